"""Reads over the tag rollups: usage by one chosen tag key's values, for the usage API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from rollups.models import NO_TAG_LABEL, NO_TAG_VALUE, TagDailyRollup, TagHourlyRollup
from rollups.selectors import FIELD_OF_GROUP, USAGE_SUMS, UsageQuery, _last_day, _present
from tenants.labels import TeamLabels
from tenants.models import Tenant

TAG_GROUP_PREFIX = "tag:"  # group_by=tag:<key>
TAG_FILTER_PREFIX = "tag."  # tag.<key>=<value>


@dataclass(frozen=True)
class TagQuery:
    """One tag key a usage query reads: grouped by its values, and/or filtered to one."""

    key: str
    grouped: bool
    value: str | None = None  # as stored: "(none)" is ""


def stored_value(shown: str) -> str:
    return NO_TAG_VALUE if shown == NO_TAG_LABEL else shown


def shown_value(stored: str) -> str:
    return NO_TAG_LABEL if stored == NO_TAG_VALUE else stored


def _source(tenant: Tenant, q: UsageQuery, tag: TagQuery) -> tuple[Any, str]:
    if q.granularity == "hour":
        hourly = TagHourlyRollup.objects.for_tenant(tenant)
        rows = hourly.filter(tag_key=tag.key, hour__gte=q.start, hour__lt=q.end)
        time_field = "hour"
    else:
        daily = TagDailyRollup.objects.for_tenant(tenant).filter(tag_key=tag.key)
        rows = daily.filter(day__gte=q.start.date(), day__lte=_last_day(q.end))
        time_field = "day"
    if tag.value is not None:
        rows = rows.filter(tag_value=tag.value)
    return rows, time_field


def tag_usage_rows(tenant: Tenant, q: UsageQuery, tag: TagQuery) -> list[dict[str, Any]]:
    """As `rollups.selectors.usage_rows`, from the tag rollups of `tag.key`; a grouped row
    carries `"tag:<key>": value` ("(none)" for events without the key)."""
    rows, time_field = _source(tenant, q, tag)
    if q.granularity == "month":
        rows, time_field = rows.annotate(period=TruncMonth(time_field)), "period"
    untagged = tuple(g for g in q.group_by if not g.startswith(TAG_GROUP_PREFIX))
    plain = UsageQuery(q.start, q.end, untagged, q.granularity)
    fields = [FIELD_OF_GROUP.get(g, g) for g in plain.group_by]
    fields += ["tag_value"] if tag.grouped else []
    grouped = rows.values(time_field, *fields).annotate(**{f"sum_{s}": Sum(s) for s in USAGE_SUMS})
    teams = TeamLabels.of(tenant) if "team" in plain.group_by else None
    out = []
    for row in grouped.order_by(time_field, *fields):
        value = row.pop("tag_value", None)
        present = _present(row, time_field, plain, teams)
        if tag.grouped:
            present[f"{TAG_GROUP_PREFIX}{tag.key}"] = shown_value(value or "")
        out.append(present)
    return out
