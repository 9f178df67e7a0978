"""A candidate model's price at a moment: the tenant's own price, else the catalog's.

The comparison prices token sums of rollup rows, not single calls, so each price comes with
the span it holds for and, for a catalog price with tiers, the input size where its base
tier ends (tiers apply per call; see `whatif.selectors`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime

from pricing.catalog import BEGINNING, END, CostFn, PriceHistory, price_history
from pricing.models import PriceOverride
from pricing.resolver import OverridePrice, normalise_provider
from tenants.models import Tenant


@dataclass(frozen=True)
class Span:
    """The price of every call in [start, end): `cost` of four token sums, None if unpriced."""

    start: datetime
    end: datetime
    cost: CostFn | None
    source: str  # "override", "catalog" or "unpriced"
    first_tier: int | None = None


@dataclass(frozen=True)
class Candidate:
    provider: str
    model: str
    overrides: list[OverridePrice]
    catalog: PriceHistory | None

    @property
    def known(self) -> bool:
        return bool(self.overrides) or self.catalog is not None

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"

    def span(self, at: datetime) -> Span:
        """The price at `at` (UTC) and how long it holds, as ingest chooses it
        (`pricing.resolver`): an override from its start until it ends or the next starts,
        else the catalog's, cut short where an override starts or from where one ended."""
        starts = [o.effective_from for o in self.overrides]
        index = bisect.bisect_right(starts, at) - 1
        after, before = BEGINNING, starts[0] if starts else END
        if index >= 0:
            override = self.overrides[index]
            before = starts[index + 1] if index + 1 < len(starts) else END
            if at < override.ended_at:
                end = min(before, override.ended_at)
                return Span(starts[index], end, override.cost_of, "override")
            after = override.ended_at
        if self.catalog is None:
            return Span(after, before, None, "unpriced")
        start, end, price = self.catalog.period(at)
        if price is None:
            return Span(max(start, after), min(end, before), None, "unpriced")
        span_end = min(end, before)
        return Span(max(start, after), span_end, price.base_cost_of, "catalog", price.first_tier)


def candidate(tenant: Tenant, provider: str, model: str) -> Candidate:
    provider_key, model_key = normalise_provider(provider), model.strip().lower()
    rows = PriceOverride.objects.for_tenant(tenant).order_by("effective_from")
    overrides = [
        OverridePrice(
            o.effective_from,
            END if o.ended_at is None else o.ended_at,
            o.input_per_mtok,
            o.output_per_mtok,
            o.cache_read_per_mtok,
            o.cache_write_per_mtok,
        )
        for o in rows
        if (normalise_provider(o.provider), o.model.strip().lower()) == (provider_key, model_key)
    ]
    return Candidate(provider_key, model_key, overrides, price_history(provider_key, model_key))
