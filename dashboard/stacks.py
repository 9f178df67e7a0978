"""The overview's and the team page's spend chart: spend per period, one series per top
value of what it is stacked by (a dimension, a model family, or a chosen tag key's values),
the rest summed as "other"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Case, F, QuerySet, Sum, When

from dashboard.filters import Filters
from dashboard.rows import period_field, rollups, tag_rows
from dashboard.selectors import DIM_FIELD, ZERO, label, periods
from pricing.families import ModelNames
from rollups.tag_selectors import shown_value
from tenants.labels import TeamLabels
from tenants.models import Tenant

Series = dict[str, dict[Any, Decimal]]
OTHER = "other"


def stacked_spend(
    tenant: Tenant, f: Filters, teams: TeamLabels, stack: str, keep: int = 8
) -> tuple[list[datetime | date], Series]:
    """Spend per period by `stack`: its top-`keep` values by spend, the rest as "other"."""
    if stack == "model_family":
        return periods(f), _by_family(tenant, f, teams, keep)
    tag = f.stack_tag if stack == f.stack else None
    if tag is not None:
        rows = tag_rows(tenant, f, teams, tag)
        return periods(f), _ranked(rows, f, "tag_value", shown_value, keep)
    rows = rollups(tenant, f, teams, stack)
    return periods(f), _ranked(rows, f, DIM_FIELD[stack], lambda v: label(stack, v, teams), keep)


def _ranked(
    rows: QuerySet[Any], f: Filters, key: str, label: Callable[[Any], str], keep: int
) -> Series:
    """The ranking and the folding into "other" happen in the database, so a page never
    pulls one row per value per period into Python."""
    period = period_field(f)
    ranked = rows.values(key).annotate(c=Sum("cost_usd")).order_by("-c", key)
    kept = ranked.values(key)[:keep]  # a subquery: one round trip for the whole chart
    field = rows.model._meta.get_field(key)
    bucket = Case(When(**{f"{key}__in": kept}, then=F(key)), default=None, output_field=field)
    sums = rows.values(period, b=bucket).annotate(c=Sum("cost_usd")).order_by(period)
    series: Series = {}
    for r in sums:
        name = label(r["b"]) if r["b"] is not None else OTHER
        series.setdefault(name, {})[r[period]] = r["c"] or ZERO
    return series


def _by_family(tenant: Tenant, f: Filters, teams: TeamLabels, keep: int) -> Series:
    """Families are the tenant's rules over (provider, model): the model slice's rows per
    period and model (a tenant uses few models), folded in Python."""
    period = period_field(f)
    rows = rollups(tenant, f, teams, "model").values(period, "provider", "model")
    names = ModelNames.of(tenant)
    per: dict[str, dict[Any, Decimal]] = {}
    for r in rows.annotate(c=Sum("cost_usd")).order_by():
        family = names.family(r["provider"], r["model"]) or "(none)"
        days = per.setdefault(family, {})
        days[r[period]] = days.get(r[period], ZERO) + (r["c"] or ZERO)
    top = sorted(per, key=lambda name: (-sum(per[name].values(), ZERO), name))[:keep]
    series: Series = {name: per[name] for name in top}
    for name in set(per) - set(top):
        other = series.setdefault(OTHER, {})
        for at, cost in per[name].items():
            other[at] = other.get(at, ZERO) + cost
    return dict(sorted(series.items(), key=lambda item: item[0] == OTHER))
