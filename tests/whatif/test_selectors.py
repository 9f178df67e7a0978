"""This month's forecast on a candidate: the overview's forecast, fed the candidate's days."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

from django.http import QueryDict

from dashboard.filters import parse_filters
from rollups.forecast import forecast_period_end
from tenants.labels import TeamLabels
from tests.conftest import World
from tests.whatif.test_api import _month, _reference
from whatif.prices import candidate
from whatif.selectors import compare


def test_it_forecasts_the_month_on_each_candidate_from_its_own_days(world: World) -> None:
    calls = _month(world)
    today = date(2026, 10, 20)
    f = parse_filters(QueryDict("range=custom&from=2026-10-01&to=2026-10-20"))
    sonnet = candidate(world.tenant, "anthropic", "claude-3-5-sonnet")
    result = compare(world.tenant, f, TeamLabels.of(world.tenant), [sonnet], today=today)
    days: dict[date, Decimal] = defaultdict(Decimal)
    for c in calls:
        day = datetime.fromisoformat(c["timestamp"]).date()
        if day <= today:
            days[day] += _reference([c], "anthropic", "claude-3-5-sonnet")
    expected = forecast_period_end(
        dict(days), today, date(2026, 10, 31), sum(days.values(), Decimal(0))
    )
    assert result.outlook.forecasts == [expected]
    assert result.outlook.month_end == date(2026, 10, 31)
    # Spend so far is part of the forecast, and the rest of the month adds to it.
    assert expected > sum(days.values())
