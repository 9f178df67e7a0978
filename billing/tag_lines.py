"""Each invoice line's amount per value of each of the tenant's chosen tag keys, and an
invoice's totals per value (reads only).

A line's amount is split over the values of a key by `tag_chargeback.split_cents` (largest
remainder, so the parts add up to the line's cents exactly), in proportion to the exact cost
the key's tag rollups hold for the line's team, provider, model and feature in its usage month:
- shares of unallocated spend are weighed by the unallocated spend's own tag rows;
- adjustments (late usage of an earlier month) by that month's tag rows as they are now;
- cost the tag rollups do not cover counts as "(none)": usage from before the key's history
  (a key chosen later is re-rolled from the raw events still retained, `rollups.tags`), and
  events a re-roll still in progress has not reached. Regenerating a draft picks them up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from billing import month_reads, months, selectors
from billing.lines import BASE_TYPE, LineDraft
from billing.models import InvoiceLineTag, LineType
from billing.money import ZERO
from billing.tag_chargeback import ROLLUPS, split_cents
from core.teams import NO_TEAM
from rollups import tag_sql
from rollups.models import NO_TAG_LABEL
from rollups.tag_selectors import shown_value
from tenants.models import Tenant

Where = tuple[int, str, str, str]  # team pk, provider, model, feature
GROUP = ("team_pk", "provider", "model", "feature", "tag_value")


@dataclass(frozen=True)
class LineTag:
    key_position: int
    tag_key: str
    tag_value: str  # as shown: "(none)", "(other)" or the value
    amount_usd: Decimal  # cents


@dataclass(frozen=True)
class MonthTags:
    """One usage month: exact cost per line place, and per key the tag rows' cost per value."""

    costs: dict[Where, Decimal]
    weights: dict[str, dict[Where, dict[str, Decimal]]]


def month_tags(tenant: Tenant, month: date, keys: list[str]) -> MonthTags:
    tz_name = selectors.basis(tenant, month).timezone
    costs = {
        (pk, line.provider, line.model, line.feature): line.cost_usd
        for pk, lines in selectors.month_usage(tenant, month, tz_name).items()
        for line in lines
    }
    window = months.window(month, tz_name)
    weights: dict[str, dict[Where, dict[str, Decimal]]] = {}
    for key in keys:
        per_place = weights.setdefault(key, {})
        rows = month_reads.summed(
            tenant, ROLLUPS, window, GROUP, ("requests", "cost_usd"), {"tag_key": key}
        )
        for row in rows:
            place = (row["team_pk"], row["provider"], row["model"], row["feature"])
            values = per_place.setdefault(place, {})
            values[shown_value(row["tag_value"])] = row["cost_usd"] or ZERO
    return MonthTags(costs, weights)


def split_line(amount: Decimal, cost: Decimal, weights: dict[str, Decimal]) -> dict[str, Decimal]:
    """`amount` (cents) over the values in proportion to their cost; the cost no tag row
    covers goes to "(none)". Adds up to `amount` exactly."""
    values = dict(weights)
    uncovered = cost - sum(values.values(), ZERO)
    if uncovered > 0 or not values:
        values[NO_TAG_LABEL] = values.get(NO_TAG_LABEL, ZERO) + max(uncovered, ZERO)
    return split_cents(amount, values)


@dataclass
class TagReader:
    """The breakdown of the lines of one generation; reads each usage month once."""

    tenant: Tenant
    keys: list[str] = field(default_factory=list)
    _months: dict[date, MonthTags] = field(default_factory=dict)

    @classmethod
    def of(cls, tenant: Tenant) -> TagReader:
        return cls(tenant, tag_sql.chosen_keys(tenant.pk))

    def line_tags(self, team_pk: int, line: LineDraft) -> list[LineTag]:
        if not self.keys:
            return []
        if line.usage_month not in self._months:
            self._months[line.usage_month] = month_tags(self.tenant, line.usage_month, self.keys)
        found = self._months[line.usage_month]
        shared = BASE_TYPE[LineType(line.line_type)] == LineType.ALLOCATION
        place = (NO_TEAM if shared else team_pk, line.provider, line.model, line.feature)
        cost = found.costs.get(place, ZERO)
        out = []
        for position, key in enumerate(self.keys):
            amounts = split_line(line.amount_usd, cost, found.weights[key].get(place, {}))
            out += [LineTag(position, key, v, a) for v, a in sorted(amounts.items())]
        return out


@dataclass(frozen=True)
class KeyTotals:
    """An invoice's amount per value of one tag key: the sum of its lines' stored splits."""

    key: str
    values: list[tuple[str, Decimal]]  # by amount, largest first

    @property
    def total(self) -> Decimal:
        return sum((amount for _, amount in self.values), ZERO)


def invoice_tag_totals(tenant: Tenant, invoice_id: int) -> list[KeyTotals]:
    """Per key the invoice was split by (in the tenant's order when it was generated), its
    amount per value; each key's values add up to the invoice total."""
    rows = (
        InvoiceLineTag.objects.for_tenant(tenant)
        .filter(invoice_id=invoice_id)
        .values("key_position", "tag_key", "tag_value")
        .annotate(amount=Sum("amount_usd"))
        .order_by("key_position", "tag_key", "-amount", "tag_value")
    )
    out: dict[str, list[tuple[str, Decimal]]] = {}
    for r in rows:
        out.setdefault(r["tag_key"], []).append((r["tag_value"], r["amount"]))
    return [KeyTotals(key, values) for key, values in out.items()]
