from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from pricing.services import set_price_override
from rollups.models import ConsumerDailyRollup
from rollups.services import (
    roll_up_all_pending,
    rollup_lag_seconds,
)
from tests.conftest import World, event, login
from tests.rollups.helpers import assert_rollups_match_raw, daily_total

DAY1 = datetime(2026, 10, 1, 9, 15, tzinfo=UTC)
DAY2 = datetime(2026, 10, 2, 14, 5, tzinfo=UTC)


def _seed(world: World) -> None:
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=DAY1.isoformat(), feature="chat", user_id="ann"),
            event(2, timestamp=DAY1.isoformat(), feature="rag", model="gpt-4o-mini"),
            event(3, timestamp=DAY2.isoformat(), feature="chat", user_id="ann", status_code=500),
            event(4, timestamp=DAY2.isoformat(), feature="chat", model="mystery", provider="x"),
        ],
    )
    ingest_events(world.other_ingest.key, [event(9, timestamp=DAY1.isoformat(), feature="secret")])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _usage(client: Client, query: str, **auth: Any) -> dict:
    response = client.get(f"/api/v1/usage?from=2026-10-01&to=2026-10-03&{query}", **auth)
    assert response.status_code == 200, response.content
    return response.json()


def test_it_groups_usage_by_day_and_feature(world: World) -> None:
    _seed(world)
    rows = _usage(Client(), "group_by=feature&granularity=day", **world.read.auth)["rows"]
    by_key = {(r["period"], r["feature"]): r for r in rows}
    assert set(by_key) == {("2026-10-01", "chat"), ("2026-10-01", "rag"), ("2026-10-02", "chat")}
    day2 = by_key[("2026-10-02", "chat")]
    assert (day2["requests"], day2["errors"], day2["unpriced_requests"]) == (2, 1, 1)
    assert day2["input_tokens"] == 2000 and isinstance(day2["cost_usd"], str)
    total = sum(Decimal(r["cost_usd"]) for r in rows)
    assert total == sum(e.cost_usd for e in UsageEvent.objects.for_tenant(world.tenant))


def test_it_reports_hours_months_teams_and_users(world: World) -> None:
    _seed(world)
    client = Client()
    hours = _usage(client, "granularity=hour", **world.read.auth)["rows"]
    assert [r["period"] for r in hours] == [
        "2026-10-01T09:00:00+00:00",
        "2026-10-02T14:00:00+00:00",
    ]
    (month,) = _usage(client, "granularity=month&group_by=team", **world.read.auth)["rows"]
    assert (month["period"], month["team"], month["requests"]) == ("2026-10-01", "search", 4)
    users = _usage(client, "group_by=user", **world.read.auth)["rows"]
    assert [(r["period"], r["user"], r["requests"]) for r in users] == [
        ("2026-10-01", "ann", 1),
        ("2026-10-02", "ann", 1),
    ]


def test_it_serves_a_signed_in_member_their_own_tenant(world: World) -> None:
    _seed(world)
    rows = _usage(login("member"), "group_by=feature")["rows"]
    assert "secret" not in {r["feature"] for r in rows}
    outsider_rows = _usage(login("outsider"), "group_by=feature")["rows"]
    assert {r["feature"] for r in outsider_rows} == {"secret"}


def test_it_never_shows_another_tenants_usage_to_a_key(world: World) -> None:
    _seed(world)
    rows = _usage(Client(), "group_by=feature", **world.other_read.auth)["rows"]
    assert [(r["feature"], r["requests"]) for r in rows] == [("secret", 1)]


def test_it_needs_a_read_key_or_a_session(world: World) -> None:
    client = Client()
    assert client.get("/api/v1/usage").status_code == 401
    assert client.get("/api/v1/usage", **world.ingest.auth).status_code == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("group_by=colour", "group_by"),
        ("granularity=week", "granularity"),
        ("from=yesterday", "from"),
        ("from=2026-10-05&to=2026-10-01", "from"),
        ("group_by=user&granularity=hour", "granularity"),
        ("group_by=user,model", "group_by"),
        ("to=0001-01-01T00:00:00%2B14:00", "to"),
        ("from=9999-12-31T23:00:00-14:00", "from"),
        ("from=0001-01-01", "from"),
        ("to=9999-12-31", "to"),
        ("from=1969-12-31T23:00:00-00:30&to=1970-01-02", "from"),
        ("from=2026-10-01T00:00:00%2B25:00", "from"),
        ("from=%00", "from"),
        ("from=20261001", "from"),  # ISO 8601's basic form: not the documented one
        ("from=2025-01-01&to=2026-02-06", "from"),  # 401 days
        ("from=2026-10-01&to=2026-11-02&granularity=hour", "granularity"),  # 32 days of hours
    ],
)
def test_it_names_the_bad_parameter(world: World, query: str, field: str) -> None:
    response = Client().get(f"/api/v1/usage?{query}", **world.read.auth)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize(
    "query",
    [
        "from=2025-01-01&to=2026-02-05&granularity=month",  # 400 days
        "from=2026-10-01&to=2026-11-01&granularity=hour",  # 31 days of hours
        "from=1970-01-01T00:00:00Z&to=1970-01-02",
        "from=9998-12-31T00:00:00%2B14:00&to=9998-12-31T23:59:59.999999-00:00",
        "to=1970-01-01T12:00:00Z",  # the default 7 days before it are a week before the bound
    ],
)
def test_it_answers_ranges_within_the_bounds(world: World, query: str) -> None:
    response = Client().get(f"/api/v1/usage?{query}", **world.read.auth)
    assert response.status_code == 200, response.content


def test_it_groups_by_a_repeated_group_once(world: World) -> None:
    _seed(world)
    answer = _usage(Client(), "group_by=feature," + "model," * 500, **world.read.auth)
    assert answer["group_by"] == ["feature", "model"]
    assert {tuple(sorted(r)) for r in answer["rows"]} == {tuple(sorted(answer["rows"][0]))}


def test_it_prints_costs_as_plain_decimals_never_in_exponent_notation(world: World) -> None:
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=DAY1.isoformat(), provider="x", model="free"),  # unpriced: $0
            event(
                2, timestamp=DAY2.isoformat(), provider="x", model="cheap", cost_usd="0.00000015"
            ),
        ],
    )
    roll_up_all_pending(world.tenant.pk)
    rows = _usage(Client(), "group_by=model", **world.read.auth)["rows"]
    assert {r["model"]: r["cost_usd"] for r in rows} == {
        "free": "0.000000000000",
        "cheap": "0.000000150000",
    }


BIGINT_MAX = 2**63 - 1
TOKEN_TABLES = ("hourlyrollup", "dailyrollup", "hourlyslice", "dailyslice", "lifetimerollup")


def test_it_sums_tokens_past_what_bigint_holds(world: World) -> None:
    # Ten years of maximal calls sum to ~2e21 tokens: the sum columns are numeric(38, 0).
    _seed(world)
    with connection.cursor() as cursor:
        for table in TOKEN_TABLES:
            cursor.execute(
                f"UPDATE rollups_{table} SET input_tokens = %s WHERE tenant_id = %s",
                [BIGINT_MAX, world.tenant.pk],
            )
        cursor.execute(
            "UPDATE rollups_consumerdailyrollup SET input_tokens = %s WHERE tenant_id = %s",
            [BIGINT_MAX, world.tenant.pk],
        )
    more = event(5, timestamp=DAY1.isoformat(), feature="chat", user_id="ann")
    ingest_events(world.ingest.key, [{**more, "input_tokens": 10**8}])
    roll_up_all_pending(world.tenant.pk)
    assert not PendingBatch.objects.for_tenant(world.tenant).exists()
    rows = _usage(Client(), "group_by=feature&granularity=day", **world.read.auth)["rows"]
    by_key = {(r["period"], r["feature"]): r["input_tokens"] for r in rows}
    assert by_key[("2026-10-01", "chat")] == BIGINT_MAX + 10**8
    ann = ConsumerDailyRollup.objects.for_tenant(world.tenant).get(
        kind="user", consumer="ann", day=DAY1.date()
    )
    assert ann.input_tokens == BIGINT_MAX + 10**8


def test_it_reports_the_rollup_lag(world: World) -> None:
    assert rollup_lag_seconds() == 0
    ingest_events(world.ingest.key, [event(1)])
    PendingBatch.objects.for_tenant(world.tenant).update(
        created_at=datetime.now(UTC) - timedelta(seconds=90)
    )
    assert 89 < rollup_lag_seconds(world.tenant.pk) < 120
    assert rollup_lag_seconds(world.other_tenant.pk) == 0
    roll_up_all_pending(world.tenant.pk)
    assert rollup_lag_seconds() == 0


def test_it_reprices_and_rebuilds_on_purpose_with_the_rollup_command(world: World) -> None:
    _seed(world)
    set_price_override(
        world.tenant,
        provider="openai",
        model="gpt-4o",
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("2"),
    )
    # Until someone asks, history keeps the price it was stored with.
    assert UsageEvent.objects.for_tenant(world.tenant).filter(cost_source="override").count() == 0
    out = StringIO()
    call_command("rollup", "--tenant", "acme", "--since", "2026-10-01", stdout=out)
    assert "re-priced 2 events (of 4 from 2026-10-01)" in out.getvalue()  # the gpt-4o ones
    repriced = UsageEvent.objects.for_tenant(world.tenant).get(event_id="evt-1")
    assert (repriced.cost_usd, repriced.cost_source) == (Decimal("0.002"), "override")
    assert_rollups_match_raw(world.tenant)
    assert_rollups_match_raw(world.other_tenant)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--tenant", "nope"), "does not exist"), (("--since", "last week"), "YYYY-MM-DD")],
)
def test_it_explains_bad_rollup_arguments(
    world: World, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("rollup", *args, stdout=StringIO())


def test_it_rolls_up_past_a_batch_whose_events_were_all_rejected(world: World) -> None:
    ingest_events(world.ingest.key, [event(1, input_tokens=-5)])  # rejected: nothing stored
    ingest_events(world.ingest.key, [event(2, timestamp=DAY1.isoformat())])
    assert roll_up_all_pending(world.tenant.pk) == 1
    assert not PendingBatch.objects.for_tenant(world.tenant).exists()
    assert daily_total(world.tenant)[0] == 1
