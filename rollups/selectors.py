"""Reads over the rollups: every page and API figure comes from here, never raw events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q, Sum
from django.db.models.functions import TruncMonth

from core.money import decimal_text
from pricing.families import ModelNames
from rollups.models import ConsumerDailyRollup, DailyRollup, HourlyRollup, LifetimeRollup
from tenants.labels import TeamLabels
from tenants.models import Tenant

# `model` is the canonical model (the catalog's id), `model_name` the name calls reported.
GROUPS = (
    "team", "feature", "model", "model_name", "model_family", "provider", "environment",
    "endpoint", "status", "user",
)  # fmt: skip
# Groups worked out in Python from (provider, model) after the database has grouped by those.
FOLDED = ("model", "model_family")
# Filters: each narrows the rows to one value of its dimension.
FILTERS = (
    "team", "feature", "provider", "environment", "endpoint", "status", "model", "model_name",
    "model_family",
)  # fmt: skip
# What the per-user rollups keep besides the user: the only filters and groups they take.
USER_DIMENSIONS = ("team", "environment")
GRANULARITIES = ("hour", "day", "month")
TOKEN_SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
USAGE_SUMS = ("requests", "errors", *TOKEN_SUMS, "cost_usd", "unpriced_requests")
FIELD_OF_GROUP = {"team": "team_pk", "user": "consumer", "model_name": "model"}


@dataclass(frozen=True)
class UsageQuery:
    start: datetime
    end: datetime  # exclusive
    group_by: tuple[str, ...] = ()
    granularity: str = "day"
    # Filter name -> value; a team is given by its pk (the caller resolved the label).
    filters: dict[str, Any] = field(default_factory=dict)


def _last_day(end: datetime) -> date:
    # `end` is exclusive: a range ending at midnight does not include that day.
    day = end.date()
    return day if end.time() != datetime.min.time() else date.fromordinal(day.toordinal() - 1)


def _source(tenant: Tenant, q: UsageQuery) -> tuple[Any, str, tuple[str, ...]]:
    if "user" in q.group_by:
        rows = ConsumerDailyRollup.objects.for_tenant(tenant).filter(
            kind=ConsumerDailyRollup.Kind.USER, day__gte=q.start.date(), day__lte=_last_day(q.end)
        )
        return rows, "day", ("requests", "input_tokens", "output_tokens", "cost_usd")
    if q.granularity == "hour":
        rows = HourlyRollup.objects.for_tenant(tenant).filter(hour__gte=q.start, hour__lt=q.end)
        return rows, "hour", USAGE_SUMS
    rows = DailyRollup.objects.for_tenant(tenant).filter(
        day__gte=q.start.date(), day__lte=_last_day(q.end)
    )
    return rows, "day", USAGE_SUMS


def model_pairs(tenant: Tenant | int, names: ModelNames, model: str, family: str) -> Q | None:
    """The tenant's (provider, model) pairs whose canonical model is `model` and family is
    `family` (either may be ""), as a condition on rollup rows; None when there are none.

    The pairs are every pair the tenant ever reported (its all-time rows: one per label set).
    """
    pairs = LifetimeRollup.objects.for_tenant(tenant).values_list("provider", "model").distinct()
    chosen = [
        Q(provider=p, model=m)
        for p, m in pairs
        if (not model or names.canonical(p, m) == model)
        and (not family or names.family(p, m) == family)
    ]
    return reduce(or_, chosen) if chosen else None


def _filtered(tenant: Tenant, rows: Any, q: UsageQuery, names: ModelNames) -> Any:
    plain = {FIELD_OF_GROUP.get(n, n): v for n, v in q.filters.items() if n not in FOLDED}
    rows = rows.filter(**plain)
    if any(q.filters.get(n) for n in FOLDED):
        pairs = model_pairs(
            tenant, names, q.filters.get("model", ""), q.filters.get("model_family", "")
        )
        rows = rows.none() if pairs is None else rows.filter(pairs)
    return rows


def usage_rows(tenant: Tenant, q: UsageQuery) -> list[dict[str, Any]]:
    """Usage per period and group: cost as a decimal string, tokens by kind, requests, errors."""
    rows, time_field, sums = _source(tenant, q)
    return summed_rows(tenant, q, rows, time_field, sums)


def summed_rows(
    tenant: Tenant, q: UsageQuery, rows: Any, time_field: str, sums: tuple[str, ...]
) -> list[dict[str, Any]]:
    """`rows` (rollup rows of the query's range) filtered, grouped and summed as `q` asks,
    canonical models and families folded in Python: the usage API's answer rows."""
    names = ModelNames.of(tenant)
    rows = _filtered(tenant, rows, q, names)
    if q.granularity == "month":
        rows, time_field = rows.annotate(period=TruncMonth(time_field)), "period"
    folding = [g for g in q.group_by if g in FOLDED]
    fields = [FIELD_OF_GROUP.get(g, g) for g in q.group_by if g not in FOLDED]
    if folding:
        fields = list(dict.fromkeys([*fields, "provider", "model"]))
    grouped = rows.values(time_field, *fields).annotate(**{f"sum_{s}": Sum(s) for s in sums})
    found = list(grouped.order_by(time_field, *fields))
    if folding:
        found = _folded(found, time_field, q.group_by, names)
    teams = TeamLabels.of(tenant) if "team" in q.group_by else None
    return [_present(row, time_field, q, teams, bool(folding)) for row in found]


def _folded(
    rows: list[dict[str, Any]], time_field: str, group_by: tuple[str, ...], names: ModelNames
) -> list[dict[str, Any]]:
    """Rows grouped by (provider, model) summed into rows of their canonical model or family
    (with the other groups kept, each under its group's name), in period and group order.
    Few rows: what a page shows."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        provider, model = row["provider"], row["model"]
        folded = {
            "model": names.canonical(provider, model),
            "model_family": names.family(provider, model),
        }
        values = {g: folded[g] if g in FOLDED else row[FIELD_OF_GROUP.get(g, g)] for g in group_by}
        key = (row[time_field], *values.values())
        target = out.get(key)
        if target is None:
            out[key] = {time_field: row[time_field], **values, **_sums(row)}
            continue
        for name, value in _sums(row).items():
            target[name] = (target[name] or 0) + (value or 0)
    return [out[key] for key in sorted(out, key=_sort_key)]


def _sums(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k.startswith("sum_")}


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return (key[0], *(str(v) for v in key[1:]))


def _present(
    row: dict[str, Any], time_field: str, q: UsageQuery, teams: TeamLabels | None, folded: bool
) -> dict[str, Any]:
    period = row.pop(time_field)
    if isinstance(period, datetime):
        period = period.date() if q.granularity == "month" else period
    out: dict[str, Any] = {"period": period.isoformat(), "granularity": q.granularity}
    for group in q.group_by:
        value = row.pop(group if folded else FIELD_OF_GROUP.get(group, group))
        out[group] = teams.label(value) if teams is not None and group == "team" else value
    for key, value in row.items():
        name = key.removeprefix("sum_")
        out[name] = decimal_text(value) if name == "cost_usd" else value or 0
    return out
