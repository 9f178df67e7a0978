"""Reads over the tag rollups: usage by one chosen tag key's values, for the usage API."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.db.models import QuerySet

from rollups.models import (
    ALL_ENVIRONMENTS,
    NO_TAG_LABEL,
    NO_TAG_VALUE,
    TAG_SLICES,
    TagDailyRollup,
    TagDailySlice,
    TagHourlyRollup,
    TagHourlySlice,
)
from rollups.selectors import (
    FIELD_OF_GROUP,
    FOLDED,
    USAGE_SUMS,
    UsageQuery,
    _last_day,
    summed_rows,
)
from tenants.models import Tenant

TAG_GROUP_PREFIX = "tag:"  # group_by=tag:<key>
TAG_FILTER_PREFIX = "tag."  # tag.<key>=<value>
TAG_VALUE = "tag_value"  # the tag rollups' column, grouped like a dimension


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


def slice_for(fields: list[str]) -> str | None:
    """The smallest tag slice holding every grouped field (environment aside), if any."""
    wanted = set(fields) - {"environment"}
    fits = [name for name, kept in TAG_SLICES.items() if wanted <= set(kept)]
    return min(fits, key=lambda name: len(TAG_SLICES[name]), default=None)


def in_slice(rows: QuerySet[Any], name: str, per_environment: bool) -> QuerySet[Any]:
    """A slice's rows: per environment, or summed over all of them (environment "")."""
    rows = rows.filter(grouping=name)
    if per_environment:
        return rows.exclude(environment=ALL_ENVIRONMENTS)
    return rows.filter(environment=ALL_ENVIRONMENTS)


def _source(tenant: Tenant, q: UsageQuery, tag: TagQuery, fields: list[str]) -> tuple[Any, str]:
    """The rows to sum: a slice when one holds the grouping and nothing but the tag filters
    (one row per value and period instead of one per team, feature, model, endpoint, status
    and environment; a slice's other dimensions are blank), else the full tag rollups."""
    hourly = q.granularity == "hour"
    name = None if q.filters else slice_for(fields)
    if name is None:
        rows = (TagHourlyRollup if hourly else TagDailyRollup).objects.for_tenant(tenant)
    else:
        rows = (TagHourlySlice if hourly else TagDailySlice).objects.for_tenant(tenant)
        rows = in_slice(rows, name, "environment" in fields)
    rows = rows.filter(tag_key=tag.key)
    if hourly:
        rows, time_field = rows.filter(hour__gte=q.start, hour__lt=q.end), "hour"
    else:
        rows = rows.filter(day__gte=q.start.date(), day__lte=_last_day(q.end))
        time_field = "day"
    if tag.value is not None:
        rows = rows.filter(tag_value=tag.value)
    return rows, time_field


def tag_usage_rows(tenant: Tenant, q: UsageQuery, tag: TagQuery) -> list[dict[str, Any]]:
    """As `rollups.selectors.usage_rows`, from the tag rollups of `tag.key` (the same filters,
    groups and folding); a grouped row carries `"tag:<key>": value` ("(none)" for events
    without the key)."""
    untagged = tuple(g for g in q.group_by if not g.startswith(TAG_GROUP_PREFIX))
    fields = [FIELD_OF_GROUP.get(g, g) for g in untagged if g not in FOLDED]
    fields += ["provider", "model"] if any(g in FOLDED for g in untagged) else []
    rows, time_field = _source(tenant, q, tag, fields)
    grouped = (*untagged, TAG_VALUE) if tag.grouped else untagged
    out = summed_rows(tenant, replace(q, group_by=grouped), rows, time_field, USAGE_SUMS)
    if tag.grouped:
        for row in out:
            row[f"{TAG_GROUP_PREFIX}{tag.key}"] = shown_value(row.pop(TAG_VALUE) or "")
    return out
