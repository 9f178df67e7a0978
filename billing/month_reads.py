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
    """[first_day, last_day] whole UTC days (none when first_day > last_day), and the hours
    outside them as [start, end) windows."""

    first_day: date
    last_day: date
    edges: tuple[tuple[datetime, datetime], ...]

    @property
    def has_days(self) -> bool:
        return self.first_day <= self.last_day


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def split(start: datetime, end: datetime) -> Split:
    """The UTC days wholly inside [start, end), and the hours left over at either end."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first = start.date() if start == _midnight(start.date()) else start.date() + timedelta(1)
    after = end.date()  # the first day not wholly inside
    if first >= after:
        return Split(first, first - timedelta(1), ((start, end),) if start < end else ())
    edges = ((start, _midnight(first)), (_midnight(after), end))
    return Split(first, after - timedelta(1), tuple((a, b) for a, b in edges if a < b))


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
) -> list[Any]:
    """The (daily, hourly) querysets covering `window` under `filters`; empty parts left out."""
    daily, hourly = models
    part = split(*window)
    out = []
    if part.has_days:
        days = {"day__gte": part.first_day, "day__lte": part.last_day}
        out.append(daily.objects.for_tenant(tenant).filter(**days, **filters))  # type: ignore[attr-defined]
    if part.edges:
        hours = hourly.objects.for_tenant(tenant).filter(_hours_q(part.edges), **filters)  # type: ignore[attr-defined]
        out.append(hours)
    return out


def summed(
    tenant: Tenant,
    models: tuple[type[Model], type[Model]],
    window: tuple[datetime, datetime],
    group: tuple[str, ...],
    measures: tuple[str, ...],
    filters: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Per `group` values over `window`: the sums of `measures`, ordered by `group`."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rows in rows_of(tenant, models, window, filters or {}):
        sums = {f"s_{name}": Sum(name) for name in measures}
        for row in rows.values(*group).annotate(**sums).order_by():
            key = tuple(row[g] for g in group)
            found = out.setdefault(key, {**{g: row[g] for g in group}, **dict.fromkeys(measures)})
            for name in measures:
                value = row[f"s_{name}"]
                if value is not None:
                    found[name] = value if found[name] is None else found[name] + value
    return [out[key] for key in sorted(out)]


def distinct(
    tenant: Tenant,
    models: tuple[type[Model], type[Model]],
    window: tuple[datetime, datetime],
    name: str,
) -> set[Any]:
    """The distinct values of `name` over `window`."""
    found: set[Any] = set()
    for rows in rows_of(tenant, models, window, {}):
        found.update(rows.values_list(name, flat=True).distinct().order_by())
    return found
