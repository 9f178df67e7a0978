"""Spend by model family, for the team page: the (provider, model) pairs of the period and
the one before, folded by the tenant's family rules (`pricing.families`)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from django.db.models import F, Sum

from dashboard.filters import Filters
from dashboard.rows import rollups
from dashboard.selectors import ZERO, Row, change, in_period
from pricing.families import ModelNames
from tenants.labels import TeamLabels
from tenants.models import Tenant


def top_families(tenant: Tenant, f: Filters, teams: TeamLabels, limit: int = 8) -> list[Row]:
    """Families by spend, with share and change vs before. One query over the model slice
    (one row per model in use, not per period), folded in Python: a tenant uses few models."""
    now = in_period(f)
    span = replace(f, start=f.previous().start)
    rows = rollups(tenant, span, teams, "model").values("provider", "model")
    names = ModelNames.of(tenant)
    sums: dict[str, list[Decimal | int]] = {}
    for r in rows.annotate(
        c=Sum("cost_usd", filter=now),
        n=Sum("requests", filter=now),
        t=Sum(F("input_tokens") + F("output_tokens"), filter=now),
        p=Sum("cost_usd", filter=~now),
    ).order_by():
        s = sums.setdefault(names.family(r["provider"], r["model"]), [ZERO, 0, 0, ZERO, 0])
        for i, name in enumerate(("c", "n", "t", "p")):
            s[i] += r[name] or 0
        s[4] += r["n"] is not None  # the family was used in the period
    total = sum((Decimal(s[0]) for s in sums.values() if s[4]), ZERO)
    ranked = sorted(((k, s) for k, s in sums.items() if s[4]), key=lambda i: -i[1][0])
    return [_row(name, s, total) for name, s in ranked[:limit]]


def _row(name: str, s: list[Decimal | int], total: Decimal) -> Row:
    cost = Decimal(s[0])
    return Row(
        key=name,
        label=name or "(none)",
        cost=cost,
        requests=int(s[1]),
        tokens=int(s[2]),
        share=float(cost / total) if total else 0.0,
        change=change(cost, Decimal(s[3])),
    )
