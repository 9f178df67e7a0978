"""The rollup rows a page's filters select: which table (full rollups or a slice, hourly or
daily) and which of its rows. Every page figure in `dashboard.selectors` starts here."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import QuerySet

from dashboard.filters import Filters
from pricing.families import ModelNames
from rollups.models import (
    ALL_ENVIRONMENTS,
    SLICES,
    DailyRollup,
    DailySlice,
    HourlyRollup,
    HourlySlice,
    TagDailyRollup,
    TagDailySlice,
    TagHourlyRollup,
    TagHourlySlice,
)
from rollups.selectors import model_pairs
from rollups.tag_selectors import stored_value
from tenants.labels import TeamLabels
from tenants.models import Tenant

Grouping = str | tuple[str, ...]
# A grouping no slice holds (several dimensions together): always the full rollups.
FULL = "full"
# Filters that narrow to one value of a rollup column, as the slice that keeps it is named.
COLUMN_FILTERS = ("feature", "model", "endpoint", "status")
# Each filter and the slice that holds what it keeps (a family is some (provider, model) pairs).
FILTER_SLICE = {"team": "team", **{n: n for n in COLUMN_FILTERS}, "model_family": "model"}
# The table a read takes, by (hourly, sliced, tagged). A tag filter reads its key's tag
# rollups, which hold every dimension and slice the plain ones do, per tag value.
TABLES: dict[tuple[bool, bool, bool], type[Any]] = {
    (True, False, False): HourlyRollup,
    (True, True, False): HourlySlice,
    (False, False, False): DailyRollup,
    (False, True, False): DailySlice,
    (True, False, True): TagHourlyRollup,
    (True, True, True): TagHourlySlice,
    (False, False, True): TagDailyRollup,
    (False, True, True): TagDailySlice,
}


def rollups(
    tenant: Tenant, f: Filters, teams: TeamLabels, grouping: Grouping = "all"
) -> QuerySet[Any]:
    """The rollup rows a page's filters select: hourly for short ranges, daily otherwise.

    `grouping` names the one dimension the caller groups by ("all" for none), or several
    that it groups by separately. Where a slice holds the same sums (see `slices_for`) it is
    read instead of the full rollups, in far fewer rows.
    """
    if f.hourly:
        return hourly(tenant, f, teams, grouping)
    return daily(tenant, f, teams, f.first_day, f.last_day, grouping)


def hourly(
    tenant: Tenant, f: Filters, teams: TeamLabels, grouping: Grouping = "all"
) -> QuerySet[Any]:
    """Hourly rows of the page's range under its filters, whatever the range's length: for
    what needs each hour (a price that changes within a day)."""
    slices = slices_for(f, grouping)
    model = TABLES[True, slices is not None, f.tag is not None]
    rows = model.objects.for_tenant(tenant).filter(hour__gte=f.start, hour__lt=f.end)
    return _narrow(tenant, _tagged(rows, f), f, teams, slices)


def daily(
    tenant: Tenant,
    f: Filters,
    teams: TeamLabels,
    first: date,
    last: date,
    grouping: Grouping = "all",
) -> QuerySet[Any]:
    """Daily rows of [first, last] under the page's filters (see `rollups`)."""
    slices = slices_for(f, grouping)
    model = TABLES[False, slices is not None, f.tag is not None]
    rows = model.objects.for_tenant(tenant).filter(day__gte=first, day__lte=last)
    return _narrow(tenant, _tagged(rows, f), f, teams, slices)


def _tagged(rows: QuerySet[Any], f: Filters) -> QuerySet[Any]:
    """A tag rollup's rows of the filter's key and value."""
    if f.tag is None:
        return rows
    return rows.filter(tag_key=f.tag.key, tag_value=stored_value(f.tag.value))


def tag_rows(
    tenant: Tenant, f: Filters, teams: TeamLabels, key: str, grouping: Grouping = "all"
) -> QuerySet[Any]:
    """As `rollups`, from one chosen tag key's rollups (or its slices, which keep the same
    groupings as the slices of the plain rollups), for grouping by the key's values. A tag
    filter on the same key keeps its value; one on another key cannot apply (the caller
    drops it, see `Filters.tag`)."""
    slices = slices_for(f, grouping)
    model = TABLES[f.hourly, slices is not None, True]
    if f.hourly:
        rows = model.objects.for_tenant(tenant).filter(hour__gte=f.start, hour__lt=f.end)
    else:
        rows = model.objects.for_tenant(tenant).filter(day__gte=f.first_day, day__lte=f.last_day)
    rows = rows.filter(tag_key=key)
    if f.tag is not None and f.tag.key == key:
        rows = rows.filter(tag_value=stored_value(f.tag.value))
    return _narrow(tenant, rows, f, teams, slices)


def slices_for(f: Filters, grouping: Grouping) -> list[str] | None:
    """The slices that hold what a query grouped by `grouping` needs, or None for the full
    rollups. Unfiltered, each grouping's own slice; filtered by one dimension (team,
    feature, model, endpoint, status, or a model family), that dimension's slice when the
    query groups by nothing else (a team page's totals and trends read one row per day)."""
    if grouping == FULL:
        return None
    names = [g if g in SLICES else "all" for g in _names(grouping)]
    filtered = [d for d in FILTER_SLICE if getattr(f, d)]
    if not filtered:
        return names
    if len(filtered) == 1 and set(names) <= {"all", FILTER_SLICE[filtered[0]]}:
        return [FILTER_SLICE[filtered[0]]]
    return None


def _narrow(
    tenant: Tenant, rows: QuerySet[Any], f: Filters, teams: TeamLabels, slices: list[str] | None
) -> QuerySet[Any]:
    if slices is not None:
        # The slices' rows of one environment, or their rows summed over all environments.
        rows = rows.filter(grouping__in=slices, environment=f.environment or ALL_ENVIRONMENTS)
    elif f.environment:
        rows = rows.filter(environment=f.environment)
    for name in COLUMN_FILTERS:
        if getattr(f, name):
            rows = rows.filter(**{name: getattr(f, name)})
    if f.model_family:
        pairs = model_pairs(tenant, ModelNames.of(tenant), "", f.model_family)
        rows = rows.none() if pairs is None else rows.filter(pairs)
    return team_filter(rows, f, teams)


def _names(grouping: Grouping) -> tuple[str, ...]:
    return (grouping,) if isinstance(grouping, str) else grouping


def team_filter(rows: QuerySet[Any], f: Filters, teams: TeamLabels) -> QuerySet[Any]:
    if not f.team:
        return rows
    team_pk = teams.pk(f.team)
    return rows.filter(team_pk=team_pk) if team_pk is not None else rows.none()


def period_field(f: Filters) -> str:
    return "hour" if f.hourly else "day"
