"""Reads over the rollups: every page and API figure comes from here, never raw events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from core.money import decimal_text
from rollups.models import ConsumerDailyRollup, DailyRollup, HourlyRollup
from tenants.labels import TeamLabels
from tenants.models import Tenant

GROUPS = ("team", "feature", "model", "provider", "environment", "user")
GRANULARITIES = ("hour", "day", "month")
TOKEN_SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
USAGE_SUMS = ("requests", "errors", *TOKEN_SUMS, "cost_usd", "unpriced_requests")
FIELD_OF_GROUP = {"team": "team_pk", "user": "consumer"}


@dataclass(frozen=True)
class UsageQuery:
    start: datetime
    end: datetime  # exclusive
    group_by: tuple[str, ...] = ()
    granularity: str = "day"


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


def usage_rows(tenant: Tenant, q: UsageQuery) -> list[dict[str, Any]]:
    """Usage per period and group: cost as a decimal string, tokens by kind, requests, errors."""
    rows, time_field, sums = _source(tenant, q)
    if q.granularity == "month":
        rows, time_field = rows.annotate(period=TruncMonth(time_field)), "period"
    fields = [FIELD_OF_GROUP.get(g, g) for g in q.group_by]
    grouped = rows.values(time_field, *fields).annotate(**{f"sum_{s}": Sum(s) for s in sums})
    teams = TeamLabels.of(tenant) if "team" in q.group_by else None
    return [_present(row, time_field, q, teams) for row in grouped.order_by(time_field, *fields)]


def _present(
    row: dict[str, Any], time_field: str, q: UsageQuery, teams: TeamLabels | None
) -> dict[str, Any]:
    period = row.pop(time_field)
    if isinstance(period, datetime):
        period = period.date() if q.granularity == "month" else period
    out: dict[str, Any] = {"period": period.isoformat(), "granularity": q.granularity}
    for group in q.group_by:
        value = row.pop(FIELD_OF_GROUP.get(group, group))
        out[group] = teams.label(value) if teams is not None and group == "team" else value
    for key, value in row.items():
        name = key.removeprefix("sum_")
        out[name] = decimal_text(value) if name == "cost_usd" else value or 0
    return out
