from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from itertools import product
from typing import Any

from django.db.models import Count, Sum

from ingest.models import UsageEvent
from rollups.models import (
    DIMENSIONS,
    SLICES,
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
from tenants.models import Tenant

SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd")


def raw_totals(tenant: Tenant) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Per hour, team, feature, model and environment: what the raw events add up to."""
    rows = (
        UsageEvent.objects.for_tenant(tenant)
        .values("hour", "team_id", "feature", "provider", "model", "environment")
        .annotate(n=Count("id"), **{f"s_{k}": Sum(k) for k in SUMS})
    )
    return {
        (r["hour"], r["team_id"] or 0, r["feature"], r["provider"], r["model"], r["environment"]): (
            r["n"],
            *(r[f"s_{k}"] for k in SUMS),
        )
        for r in rows
    }


def hourly_totals(tenant: Tenant) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = HourlyRollup.objects.for_tenant(tenant).filter(requests__gt=0)
    return {
        (r.hour, r.team_pk, r.feature, r.provider, r.model, r.environment): (
            r.requests,
            *(getattr(r, k) for k in SUMS),
        )
        for r in rows
    }


def daily_total(tenant: Tenant) -> tuple[int, Decimal]:
    agg = DailyRollup.objects.for_tenant(tenant).aggregate(n=Sum("requests"), c=Sum("cost_usd"))
    return agg["n"] or 0, agg["c"] or Decimal(0)


def user_totals(tenant: Tenant) -> dict[str, tuple[int, Decimal]]:
    rows = ConsumerDailyRollup.objects.for_tenant(tenant).filter(kind="user")
    out: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for r in rows:
        out[r.consumer][0] += r.requests
        out[r.consumer][1] += r.cost_usd
    return {k: (v[0], v[1]) for k, v in out.items() if v[0]}


def raw_user_totals(tenant: Tenant) -> dict[str, tuple[int, Decimal]]:
    rows = (
        UsageEvent.objects.for_tenant(tenant)
        .exclude(user_id="")
        .values("user_id")
        .annotate(n=Count("id"), c=Sum("cost_usd"))
    )
    return {r["user_id"]: (r["n"], r["c"]) for r in rows}


def lifetime_totals(tenant: Tenant) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = LifetimeRollup.objects.for_tenant(tenant).filter(requests__gt=0)
    return {
        (r.team_pk, r.feature, r.provider, r.model, r.environment): (
            r.requests,
            *(getattr(r, k) for k in SUMS),
        )
        for r in rows
    }


def raw_lifetime_totals(tenant: Tenant) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    out: dict[tuple[Any, ...], list[Any]] = {}
    for key, values in raw_totals(tenant).items():
        target = out.setdefault(key[1:], [0] * len(values))
        out[key[1:]] = [a + b for a, b in zip(target, values, strict=True)]
    return {k: tuple(v) for k, v in out.items()}


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
    blank = {"team_pk": 0, "feature": "", "provider": "", "model": "", "environment": ""}
    out: dict[tuple[Any, ...], list[Any]] = {}
    for r in model.objects.for_tenant(tenant).filter(requests__gt=0):
        for (name, kept), environment in product(SLICES.items(), (("environment",), ())):
            dims = [getattr(r, d) if d in (*kept, *environment) else blank[d] for d in DIMENSIONS]
            target = out.setdefault((name, getattr(r, time_field), *dims), [0] * len(MEASURES))
            for i, m in enumerate(MEASURES):
                target[i] += getattr(r, m)
    return {k: tuple(v) for k, v in out.items()}


def assert_rollups_match_raw(tenant: Tenant) -> None:
    assert hourly_totals(tenant) == raw_totals(tenant)
    assert lifetime_totals(tenant) == raw_lifetime_totals(tenant)
    raw = raw_totals(tenant).values()
    expected = (sum(v[0] for v in raw), sum((v[5] for v in raw), Decimal(0)))
    assert daily_total(tenant) == expected
    assert user_totals(tenant) == raw_user_totals(tenant)
    assert window_totals(tenant) == daily_window_totals(tenant)
    for full, sliced, time_field in (
        (HourlyRollup, HourlySlice, "hour"),
        (DailyRollup, DailySlice, "day"),
    ):
        assert slice_totals(tenant, sliced, time_field) == sliced_full_rollups(
            tenant, full, time_field
        )
