"""Month-wide reads take whole UTC days from the daily invoice-line slices and only the edge hours
from the hourly ones: the sums must be exactly those of reading every hour of the full rollups,
and of the raw events, per environment and over all of them."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import month_reads, months, selectors
from ingest.models import PendingBatch, UsageEvent
from rollups.models import (
    ConsumerDailyRollup,
    DailyRollup,
    DailySlice,
    HourlyRollup,
    HourlySlice,
    IngestCount,
)
from tenants.models import Tenant
from tests.billing.helpers import EARLIER, at, send, shared_key
from tests.conftest import World

MONTH = EARLIER
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Pacific/Kiritimati"]
MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd")


def test_it_splits_a_month_into_whole_utc_days_and_edge_hours() -> None:
    # Asia/Kolkata (+05:30): March 2026 is 2026-02-28 18:30 UTC to 2026-03-31 18:30 UTC: the
    # 5.5 hours of February 28 are added, and March 31 is its day minus its last 5.5 hours.
    part = month_reads.split(*months.window(date(2026, 3, 1), "Asia/Kolkata"))
    assert (part.first_day, part.last_day) == (date(2026, 3, 1), date(2026, 3, 31))
    assert part.edges == (
        (datetime(2026, 2, 28, 18, 30, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
    )
    assert part.minus == (
        (datetime(2026, 3, 31, 18, 30, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
    )
    # America/New_York (-05:00 in March): starts 05:00 UTC on March 1, ends 04:00 on April 1.
    ny = month_reads.split(*months.window(date(2026, 3, 1), "America/New_York"))
    assert (ny.first_day, ny.last_day) == (date(2026, 3, 1), date(2026, 3, 31))
    assert ny.minus == ((datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC)),)
    assert ny.edges == ((datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 1, 4, tzinfo=UTC)),)
    utc = month_reads.split(*months.window(date(2026, 3, 1), "UTC"))
    assert (utc.first_day, utc.last_day, utc.edges) == (date(2026, 3, 1), date(2026, 3, 31), ())


def _hourly_only(
    tenant: Tenant, month: date, tz: str, environment: str = ""
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    start, end = months.window(month, tz)
    rows = HourlyRollup.objects.for_tenant(tenant).filter(hour__gte=start, hour__lt=end)
    if environment:
        rows = rows.filter(environment=environment)
    out: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for r in rows:
        found = out[(r.team_pk, r.provider, r.model, r.feature)]
        for i, name in enumerate(MEASURES):
            found[i] += getattr(r, name)
    return {k: tuple(v) for k, v in out.items()}


def _raw(
    tenant: Tenant, month: date, tz: str, environment: str = ""
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    start, end = months.window(month, tz)
    out: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    events = UsageEvent.objects.for_tenant(tenant).filter(hour__gte=start, hour__lt=end)
    for e in events.filter(environment=environment) if environment else events:
        found = out[(e.team_id or 0, e.provider, e.model, e.feature)]
        for i, value in enumerate((1, e.input_tokens, e.output_tokens, e.cost_usd)):
            found[i] += value
    return {k: tuple(v) for k, v in out.items()}


def _split_read(
    tenant: Tenant, month: date, tz: str, environment: str = ""
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    filters = {"environment": environment} if environment else {}
    rows = selectors.line_sums(tenant, months.window(month, tz), filters)
    return {tuple(r[g] for g in selectors.GROUP): tuple(r[m] for m in MEASURES) for r in rows}


events = st.fixed_dictionaries(
    {
        "month": st.sampled_from([months.previous_month(MONTH), MONTH, months.next_month(MONTH)]),
        "day": st.sampled_from([1, 2, 27, 28]),
        "hour": st.sampled_from([0, 1, 4, 5, 9, 10, 12, 13, 14, 18, 19, 22, 23]),
        "model": st.sampled_from(["gpt-4o", "gpt-4o-mini"]),
        "feature": st.sampled_from(["", "chat"]),
        "environment": st.sampled_from(["production", "staging"]),
        "endpoint": st.sampled_from(["", "/v1/chat", "/v1/search"]),
        "status_code": st.sampled_from([200, 429, 503]),
        "input_tokens": st.integers(0, 90_000),
        "cost_usd": st.one_of(st.none(), st.decimals(0, 2, places=9).map(str)),
    }
)


def _event(n: int, raw: dict[str, Any], tz: str) -> dict[str, Any]:
    out = {
        "event_id": f"m{n}",
        "timestamp": at(raw["month"], raw["day"], raw["hour"], tz),
        "provider": "openai",
        "model": raw["model"],
        "input_tokens": raw["input_tokens"],
        "output_tokens": 100,
        "feature": raw["feature"],
        "environment": raw["environment"],
        "endpoint": raw["endpoint"],
        "status_code": raw["status_code"],
    }
    if raw["cost_usd"] is not None:
        out["cost_usd"] = raw["cost_usd"]
    return out


@pytest.mark.django_db
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(events, min_size=1, max_size=30),
    sent_in=st.sampled_from(ZONES),
    billed_in=st.sampled_from(ZONES),
)
def test_it_reads_a_month_from_daily_and_edge_hours_exactly_as_from_every_hour(
    world: World, batch: list[dict[str, Any]], sent_in: str, billed_in: str
) -> None:
    tenant = world.tenant
    tables = (UsageEvent, PendingBatch, HourlyRollup, DailyRollup, HourlySlice, DailySlice,
              ConsumerDailyRollup)  # fmt: skip
    for model in tables:
        model.objects.for_tenant(tenant).delete()
    IngestCount.objects.for_tenant(tenant).delete()
    key = shared_key(tenant)
    send(key, *(_event(n, raw, sent_in) for n, raw in enumerate(batch)))
    # Every endpoint and status class of a line is summed into it, per environment and in all.
    for env in ("", "production", "staging"):
        split = _split_read(tenant, MONTH, billed_in, env)
        assert split == _hourly_only(tenant, MONTH, billed_in, env)
        assert split == _raw(tenant, MONTH, billed_in, env)


def test_it_keeps_the_filter_choices_of_the_edge_hours(world: World) -> None:
    # 23:00 UTC on the last day of the month before is already this month in Kolkata.
    key = shared_key(world.tenant)
    before = months.previous_month(MONTH)
    last = (MONTH - before).days
    send(
        key,
        {"event_id": "edge", "timestamp": at(before, last, 23), "provider": "openai",
         "model": "gpt-4o", "input_tokens": 10, "output_tokens": 1, "feature": "edgy"},
        {"event_id": "mid", "timestamp": at(MONTH, 10), "provider": "openai",
         "model": "gpt-4o", "input_tokens": 10, "output_tokens": 1, "feature": "middle"},
    )  # fmt: skip
    assert selectors.filter_choices(world.tenant, MONTH, "Asia/Kolkata")["feature"] == [
        "edgy", "middle"
    ]  # fmt: skip
    assert selectors.filter_choices(world.tenant, MONTH, "UTC")["feature"] == ["middle"]
