"""Month-wide sums over the rollups: whole days from the daily rollups, edge hours from the hourly.

A billing month is a UTC window (`billing.months.window`) starting at local midnight of the
billing time zone; the daily rollups are kept per **UTC** day (`rollups.sql`: the day of the
hour `AT TIME ZONE 'UTC'`). So the UTC days wholly inside the window are read from the daily
rollups (one row per day instead of up to 24) and only the hours before the first and after
the last whole UTC day from the hourly rollups. Both are written by the same merge, so the
sums are exactly those of reading every hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Model, Q, Sum

from tenants.models import Tenant


@dataclass(frozen=True)
class Split:
    """[first_day, last_day] UTC days read from the daily rollups (none when first_day >
    last_day), hours [start, end) added from the hourly rollups, and hours subtracted."""

    first_day: date
    last_day: date
    edges: tuple[tuple[datetime, datetime], ...]
    minus: tuple[tuple[datetime, datetime], ...] = ()

    @property
    def has_days(self) -> bool:
        return self.first_day <= self.last_day


HALF_DAY = timedelta(hours=12)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def split(start: datetime, end: datetime) -> Split:
    """How to read [start, end): the UTC days wholly inside it from the daily rollups; a day
    cut by either end as its hours inside the window when they are at most half the day, else
    as the whole day minus the hours outside it (fewer hourly rows either way)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first = start.date() if start == _midnight(start.date()) else start.date() + timedelta(1)
    after = end.date()  # the first day not wholly inside
    if first >= after:
        return Split(first, first - timedelta(1), ((start, end),) if start < end else ())
    edges, minus = [], []
    if start < _midnight(first):  # the start cuts the day before `first`
        if _midnight(first) - start <= HALF_DAY:
            edges.append((start, _midnight(first)))
        else:
            first -= timedelta(1)
            minus.append((_midnight(first), start))
    last = after - timedelta(1)
    if end > _midnight(after):  # the end cuts day `after`
        if end - _midnight(after) <= HALF_DAY:
            edges.append((_midnight(after), end))
        else:
            last = after
            minus.append((end, _midnight(after + timedelta(1))))
    return Split(first, last, tuple(edges), tuple(minus))


def _hours_q(edges: Iterable[tuple[datetime, datetime]]) -> Q:
    q = Q(pk__in=[])
    for a, b in edges:
        q |= Q(hour__gte=a, hour__lt=b)
    return q


def rows_of(
    tenant: Tenant,
    models: tuple[type[Model], type[Model]],
    window: tuple[datetime, datetime],
    filters: Mapping[str, Any],
) -> list[tuple[int, Any]]:
    """(sign, queryset) pairs covering `window` under `filters`: daily and added hours count
    +1, subtracted hours -1; empty parts left out."""
    daily, hourly = models
    part = split(*window)
    out = []
    if part.has_days:
        days = {"day__gte": part.first_day, "day__lte": part.last_day}
        out.append((1, daily.objects.for_tenant(tenant).filter(**days, **filters)))  # type: ignore[attr-defined]
    for sign, hours in ((1, part.edges), (-1, part.minus)):
        if hours:
            rows = hourly.objects.for_tenant(tenant).filter(_hours_q(hours), **filters)  # type: ignore[attr-defined]
            out.append((sign, rows))
    return out


def summed(
    tenant: Tenant,
    models: tuple[type[Model], type[Model]],
    window: tuple[datetime, datetime],
    group: tuple[str, ...],
    measures: tuple[str, ...],
    filters: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Per `group` values over `window`: the sums of `measures`, ordered by `group`. A group
    whose measures are all zero (its usage lay wholly in subtracted hours) is left out: every
    call counts one request, so a group with usage in the window never sums to all zeros."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for sign, rows in rows_of(tenant, models, window, filters or {}):
        sums = {f"s_{name}": Sum(name) for name in measures}
        for row in rows.values(*group).annotate(**sums).order_by():
            key = tuple(row[g] for g in group)
            found = out.setdefault(key, {**{g: row[g] for g in group}, **dict.fromkeys(measures)})
            for name in measures:
                value = row[f"s_{name}"]
                if value is not None:
                    value = value * sign
                    found[name] = value if found[name] is None else found[name] + value
    return [out[k] for k in sorted(out) if any(out[k][m] for m in measures)]


def distinct(
    tenant: Tenant,
    models: tuple[type[Model], type[Model]],
    window: tuple[datetime, datetime],
    name: str,
    filters: Mapping[str, Any] | None = None,
) -> set[Any]:
    """The distinct values of `name` with calls in `window` (under `filters`)."""
    rows = summed(tenant, models, window, (name,), ("requests",), filters)
    return {row[name] for row in rows}
