"""Reads of `/prices/`: the models seen in a period, with calls, spend and the prices applied."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Sum

from prices.models import ACTIVE, RepricePreview, RepriceRun
from prices.services import preview_progress_key, progress_key
from pricing import selectors as pricing
from pricing.models import PriceOverride
from pricing.selectors import ModelPrices, PriceShown
from rollups.models import ALL_ENVIRONMENTS, DailySlice
from tenants.models import Tenant

log = logging.getLogger(__name__)

# How a price's source reads on the page (SPEC's words for the four sources).
SOURCE_LABELS = {
    pricing.OVERRIDE: "your price",
    pricing.CATALOG: "catalog",
    "client": "client-reported",
    pricing.UNPRICED: "unpriced",
}


@dataclass(frozen=True)
class SeenModel:
    provider: str
    model: str
    requests: int
    spend: Decimal
    unpriced_requests: int
    client_cost: Decimal
    prices: ModelPrices

    @property
    def source(self) -> str:
        """Where the price of its next call comes from, in the page's words."""
        if self.prices.now is not None:
            return SOURCE_LABELS[self.prices.now.source]
        return SOURCE_LABELS[
            "client" if self.client_cost and not self.unpriced_requests else pricing.UNPRICED
        ]

    @property
    def unpriced(self) -> bool:
        """Calls of the period counted at $0, or no price at all now: first on the page."""
        return self.unpriced_requests > 0 or (self.prices.now is None and not self.client_cost)

    @property
    def needs_price(self) -> bool:
        """No price of ours or the catalog's: "set a price" (client-reported ones too)."""
        return self.unpriced or self.prices.now is None

    @property
    def rank(self) -> int:
        return 0 if self.unpriced else 1 if self.needs_price else 2

    @property
    def now(self) -> PriceShown | None:
        return self.prices.now


def models_seen(tenant: Tenant, first: date, last: date) -> list[SeenModel]:
    """Every provider/model with calls between the two days (UTC, both included): unpriced
    ones first, then those only the client prices, then by spend."""
    rows = (
        DailySlice.objects.for_tenant(tenant)
        .filter(grouping="model", environment=ALL_ENVIRONMENTS, day__gte=first, day__lte=last)
        .values("provider", "model")
        .annotate(
            requests=Sum("requests"),
            spend=Sum("cost_usd"),
            unpriced_requests=Sum("unpriced_requests"),
            client_cost=Sum("cost_client"),
        )
    )
    overrides = pricing.overrides_of(tenant)
    start, end = pricing.day_bounds(first, last)
    seen = []
    for row in rows:
        key = (pricing.normalise_provider(row["provider"]), row["model"].strip().lower())
        prices = pricing.model_prices(
            overrides.get(key, []), row["provider"], row["model"], start, end
        )
        seen.append(SeenModel(prices=prices, **row))
    return sorted(seen, key=lambda m: (m.rank, -m.spend, m.provider, m.model))


def overrides(tenant: Tenant) -> list[PriceOverride]:
    return list(
        PriceOverride.objects.for_tenant(tenant).order_by("provider", "model", "-effective_from")
    )


def recent_runs(tenant: Tenant, limit: int = 10) -> list[RepriceRun]:
    runs = RepriceRun.objects.for_tenant(tenant).select_related("requested_by")
    return list(runs.order_by("-requested_at")[:limit])


def run_progress(run: RepriceRun) -> tuple[int, int]:
    """(events priced, events in all) of a run: as it goes from the cache, once done from the
    record; (0, 0) until the worker starts it."""
    if run.active:
        return _cached_progress(progress_key(run.pk))
    return run.events_done, run.events_total


def preview_progress(preview: RepricePreview) -> tuple[int, int]:
    """(events priced, events in all) of a preview, as `run_progress`."""
    if preview.active:
        return _cached_progress(preview_progress_key(preview.pk))
    return preview.events_total, preview.events_total


def active_run(tenant: Tenant) -> RepriceRun | None:
    """The re-price queued or running now, if any (at most one per tenant)."""
    return RepriceRun.objects.for_tenant(tenant).filter(status__in=ACTIVE).first()


def _cached_progress(key: str) -> tuple[int, int]:
    try:
        done, total = cache.get(key) or (0, 0)
    except Exception:  # a cache outage hides the progress, not the page
        log.warning("re-price progress %s not read: cache unavailable", key)
        return 0, 0
    return int(done), int(total)
