"""Chargeback by a cost allocation tag: the month's spend per value of one chosen tag key.

The rows are the tag rollups of the key (`(none)` for calls without it, `(other)` for values
beyond the per-day cap, as stored). Their amounts are the month's invoiced total (the team
view's total, cents per invoice line) split by largest remainder in proportion to each value's
exact cost, so the rows add up to the team view's total to the cent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from billing import month_reads, months
from billing.money import ZERO, cents, from_cents, largest_remainder
from rollups import tag_sql
from rollups.models import (
    ALL_ENVIRONMENTS,
    TagDailyRollup,
    TagDailySlice,
    TagDimension,
    TagHourlyRollup,
    TagHourlySlice,
)
from rollups.tag_selectors import TAG_GROUP_PREFIX, shown_value, slice_for
from tenants.models import Tenant

ROLLUPS = (TagDailyRollup, TagHourlyRollup)
SLICES = (TagDailySlice, TagHourlySlice)
MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd")
TEAM = "team"  # by=team: the team view (the default)


class UnknownTagKey(ValueError):
    """`by=tag:<key>` names a key the tenant does not roll up."""


@dataclass(frozen=True)
class TagRow:
    key: str  # the value as shown: "(none)", "(other)" or the tag value
    amount: Decimal
    exact: Decimal
    requests: int
    tokens: int
    share: float
    change: float | None


@dataclass(frozen=True)
class TagSpend:
    key: str
    history_from: date | None  # the day the key's rollups start, if it was chosen later
    rows: list[TagRow]

    @property
    def total(self) -> Decimal:
        return sum((r.amount for r in self.rows), ZERO)


def parse_by(tenant: Tenant, raw: str) -> str | None:
    """The tag key of `by=tag:<key>`, None for the team view; UnknownTagKey otherwise."""
    if raw in ("", TEAM):
        return None
    key = raw.removeprefix(TAG_GROUP_PREFIX)
    chosen = tag_sql.chosen_keys(tenant.pk)
    if not raw.startswith(TAG_GROUP_PREFIX) or key not in chosen:
        names = ", ".join(f"tag:{k}" for k in chosen) or "none chosen in settings"
        raise UnknownTagKey(
            f"by: unknown allocation {raw[:80]!r}; use team or a chosen tag key ({names})"
        )
    return key


def _exact(
    tenant: Tenant, key: str, month: date, tz_name: str, filters: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per shown value: the month's summed measures of the key's tag rollups."""
    window = months.window(month, tz_name)
    models, where = _source(filters)
    rows = month_reads.summed(
        tenant, models, window, ("tag_value",), MEASURES, {**where, "tag_key": key}
    )
    return {shown_value(r["tag_value"]): r for r in rows}


def _source(filters: Mapping[str, Any]) -> tuple[tuple[Any, Any], dict[str, Any]]:
    """The tag slices and their rows when one slice holds the filtered columns (environment
    aside: a slice keeps it, or sums over it): one row per value and day instead of one per
    value, team, feature, model, endpoint and status. Otherwise the full tag rollups."""
    name = slice_for([column for column in filters if column != "environment"])
    if name is None:
        return ROLLUPS, dict(filters)
    environment = filters.get("environment") or ALL_ENVIRONMENTS
    return SLICES, {**filters, "grouping": name, "environment": environment}


def split_cents(total: Decimal, weights: dict[str, Decimal]) -> dict[str, Decimal]:
    """`total` (whole cents) over the keys of `weights` by largest remainder; adds up exactly."""
    names = sorted(weights)
    if not names:
        return {}
    if sum(weights.values(), ZERO) <= 0:  # nothing to weigh by: all on the first row
        return {n: (total if i == 0 else ZERO) for i, n in enumerate(names)}
    parts = largest_remainder(cents(total), [weights[n] for n in names])
    return {n: from_cents(p) for n, p in zip(names, parts, strict=True)}


def tag_spend(
    tenant: Tenant,
    key: str,
    month: date,
    tz_name: str,
    totals: tuple[Decimal, Decimal],
    filters: Mapping[str, Any] | None = None,
) -> TagSpend:
    """Spend per value of `key` in `month`; `totals` are the invoiced totals of the month and
    the month before (the team view's), which the rows of each add up to."""
    now = _exact(tenant, key, month, tz_name, filters or {})
    before = _exact(tenant, key, months.previous_month(month), tz_name, filters or {})
    amounts = split_cents(totals[0], {v: r["cost_usd"] or ZERO for v, r in now.items()})
    previous = split_cents(totals[1], {v: r["cost_usd"] or ZERO for v, r in before.items()})
    rows = [
        TagRow(
            key=value,
            amount=amounts[value],
            exact=row["cost_usd"] or ZERO,
            requests=row["requests"] or 0,
            tokens=(row["input_tokens"] or 0) + (row["output_tokens"] or 0),
            share=float(amounts[value] / totals[0]) if totals[0] else 0.0,
            change=_change(amounts[value], previous.get(value, ZERO)),
        )
        for value, row in now.items()
    ]
    found = TagDimension.objects.for_tenant(tenant).filter(key=key).first()
    start = found.history_from if found else None
    late = start if start and start > months.local_start(month, tz_name).date() else None
    return TagSpend(key, late, sorted(rows, key=lambda r: (-r.amount, r.key)))


def _change(now: Decimal, before: Decimal) -> float | None:
    return float((now - before) / before) if before else None
