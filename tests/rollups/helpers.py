"""What the rollups must hold, worked out in Python from the raw events, independently of
the merge's SQL: every measure of every hourly, daily, all-time and per-consumer row."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import UTC
from decimal import Decimal
from itertools import product
from typing import Any

from django.db.models import QuerySet, Sum

from ingest.models import PendingBatch, UsageEvent
from pricing.resolver import CATALOG, CLIENT, OVERRIDE, UNPRICED
from rollups.models import (
    CONSUMER_MEASURES,
    DIMENSIONS,
    LATENCY_BOUNDS_MS,
    LATENCY_FIELDS,
    NO_TEAM,
    SLICES,
    TOKENS_BOUNDS,
    TOKENS_FIELDS,
    ConsumerDailyRollup,
    ConsumerWindow,
    ConsumerWindowRollup,
    DailyRollup,
    DailySlice,
    HourlyRollup,
    HourlySlice,
    LifetimeRollup,
)
from rollups.services import MEASURES
from rollups.statuses import status_class
from tenants.models import Tenant

Key = tuple[Any, ...]
COSTS = {OVERRIDE: "cost_override", CATALOG: "cost_catalog", CLIENT: "cost_client"}


def _bucket(value: float, bounds: tuple[int, ...]) -> int:
    """The histogram bucket (lower, upper] holding `value`; the last takes everything above."""
    return bisect_left(bounds, value)


def event_measures(e: UsageEvent) -> dict[str, Any]:
    """What one event adds to each measure of every usage rollup row it lands in."""
    tokens = e.input_tokens + e.output_tokens
    m: dict[str, Any] = dict.fromkeys(MEASURES, 0)
    m |= dict.fromkeys(("cost_usd", *COSTS.values()), Decimal(0))
    m |= {
        "requests": 1,
        "errors": int(e.status_code >= 400),
        "input_tokens": e.input_tokens,
        "output_tokens": e.output_tokens,
        "cache_read_tokens": e.cache_read_tokens,
        "cache_write_tokens": e.cache_write_tokens,
        "cost_usd": e.cost_usd,
    }
    if e.cost_source in COSTS:
        m[COSTS[e.cost_source]] = e.cost_usd
    if e.cost_source == UNPRICED:
        m["unpriced_requests"], m["unpriced_tokens"] = 1, tokens
    if e.latency_ms is not None:
        m["latency_sum_ms"], m["latency_count"] = e.latency_ms, 1
        m[LATENCY_FIELDS[_bucket(e.latency_ms, LATENCY_BOUNDS_MS)]] = 1
    m[TOKENS_FIELDS[_bucket(tokens, TOKENS_BOUNDS)]] = 1
    return m


def settled_events(tenant: Tenant) -> QuerySet[UsageEvent]:
    """The tenant's events whose batch is no longer pending: exactly what the rollups hold."""
    pending = PendingBatch.objects.for_tenant(tenant).values("pk")
    return UsageEvent.objects.for_tenant(tenant).exclude(batch_id__in=pending)


def expected_rollups(events: QuerySet[UsageEvent]) -> dict[str, dict[Key, tuple[Any, ...]]]:
    """Every measure per hour, per UTC day and over all time (keyed by time and dimensions),
    and the per-consumer daily sums, added up in Python from `events`."""
    sums: dict[str, dict[Key, list[Any]]] = defaultdict(dict)
    for e in events.order_by("pk").iterator():
        dims = (
            e.team_id or NO_TEAM,
            e.feature,
            e.provider,
            e.model,
            e.environment,
            e.endpoint,
            status_class(e.status_code),
        )
        day = e.hour.astimezone(UTC).date()
        measures = event_measures(e)
        for table, key in (("hourly", (e.hour, *dims)), ("daily", (day, *dims)), ("all", dims)):
            target = sums[table].setdefault(key, [0] * len(MEASURES))
            for i, name in enumerate(MEASURES):
                target[i] += measures[name]
        consumers = [("user", e.user_id)] if e.user_id else []
        consumers += [("key", str(e.api_key_id))] if e.api_key_id is not None else []
        for kind, consumer in consumers:
            consumer_key = (day, kind, consumer, dims[0], e.environment)
            target = sums["consumers"].setdefault(consumer_key, [0] * len(CONSUMER_MEASURES))
            for i, name in enumerate(CONSUMER_MEASURES):
                target[i] += measures[name]
    tables = ("hourly", "daily", "all", "consumers")
    return {table: {k: tuple(v) for k, v in sums[table].items()} for table in tables}


def stored_rollups(tenant: Tenant) -> dict[str, dict[Key, tuple[Any, ...]]]:
    """The same figures as `expected_rollups`, read from the rollup tables."""

    def rows(model: Any, time: tuple[str, ...], keys: tuple[str, ...], measures: Any) -> Any:
        return {
            tuple(getattr(r, k) for k in (*time, *keys)): tuple(getattr(r, m) for m in measures)
            for r in model.objects.for_tenant(tenant)
        }

    consumer_keys = ("day", "kind", "consumer", "team_pk", "environment")
    return {
        "hourly": rows(HourlyRollup, ("hour",), DIMENSIONS, MEASURES),
        "daily": rows(DailyRollup, ("day",), DIMENSIONS, MEASURES),
        "all": rows(LifetimeRollup, (), DIMENSIONS, MEASURES),
        "consumers": rows(ConsumerDailyRollup, (), consumer_keys, CONSUMER_MEASURES),
    }


def daily_total(tenant: Tenant) -> tuple[int, Decimal]:
    agg = DailyRollup.objects.for_tenant(tenant).aggregate(n=Sum("requests"), c=Sum("cost_usd"))
    return agg["n"] or 0, agg["c"] or Decimal(0)


def window_totals(tenant: Tenant) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = ConsumerWindowRollup.objects.for_tenant(tenant).filter(requests__gt=0)
    return {
        (r.first_day, r.last_day, r.kind, r.consumer, r.environment): (
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.cost_usd,
        )
        for r in rows
    }


def daily_window_totals(tenant: Tenant) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """What each built consumer window must hold: its days' per-consumer daily rows, summed
    per consumer and environment (except in the live window, today's), per consumer, per
    environment ("" consumer) and overall."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    windows = ConsumerWindow.objects.for_tenant(tenant).values_list("first_day", "last_day", "live")
    for first, last, live in windows:
        days = ConsumerDailyRollup.objects.for_tenant(tenant).filter(
            day__gte=first, day__lte=last, requests__gt=0
        )
        for r in days:
            for consumer in (r.consumer, ""):
                for environment in (r.environment, ""):
                    if live and consumer and environment:
                        continue
                    key = (first, last, r.kind, consumer, environment)
                    target = out.setdefault(key, [0, 0, 0, Decimal(0)])
                    target[0] += r.requests
                    target[1] += r.input_tokens
                    target[2] += r.output_tokens
                    target[3] += r.cost_usd
    return {k: tuple(v) for k, v in out.items()}


def slice_totals(tenant: Tenant, model: type[Any], time_field: str) -> dict[tuple[Any, ...], Any]:
    rows = model.objects.for_tenant(tenant).filter(requests__gt=0)
    return {
        (r.grouping, getattr(r, time_field), *(getattr(r, d) for d in DIMENSIONS)): tuple(
            getattr(r, m) for m in MEASURES
        )
        for r in rows
    }


def sliced_full_rollups(
    tenant: Tenant, model: type[Any], time_field: str
) -> dict[tuple[Any, ...], Any]:
    """What every slice must hold: the full rollup rows with the other dimensions blanked,
    once with their environment and once with the environment blank (all environments)."""
    blank = {"team_pk": 0, **dict.fromkeys(DIMENSIONS[1:], "")}
    out: dict[tuple[Any, ...], list[Any]] = {}
    for r in model.objects.for_tenant(tenant).filter(requests__gt=0):
        for (name, kept), environment in product(SLICES.items(), (("environment",), ())):
            dims = [getattr(r, d) if d in (*kept, *environment) else blank[d] for d in DIMENSIONS]
            target = out.setdefault((name, getattr(r, time_field), *dims), [0] * len(MEASURES))
            for i, m in enumerate(MEASURES):
                target[i] += getattr(r, m)
    return {k: tuple(v) for k, v in out.items()}


def assert_rollups_match_raw(tenant: Tenant, events: QuerySet[UsageEvent] | None = None) -> None:
    """Every rollup row of `tenant` holds exactly (money to the last of its 12 decimals) what
    `events` add up to (default: all of the tenant's events), and nothing else; each slice
    and consumer window holds what the rows it is cut from add up to."""
    expected = expected_rollups(UsageEvent.objects.for_tenant(tenant) if events is None else events)
    stored = stored_rollups(tenant)
    for table in ("hourly", "daily", "all", "consumers"):
        assert stored[table] == expected[table], table
    assert window_totals(tenant) == daily_window_totals(tenant)
    for full, sliced, time_field in (
        (HourlyRollup, HourlySlice, "hour"),
        (DailyRollup, DailySlice, "day"),
    ):
        assert slice_totals(tenant, sliced, time_field) == sliced_full_rollups(
            tenant, full, time_field
        )
