"""Choose each event's cost in SPEC.md's order and record where it came from.

tenant override at the event's time -> bundled catalog at the event's time -> the client's
cost_usd -> unpriced (cost 0, reported as unpriced usage, never as free).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import models

from pricing.catalog import ZERO, CatalogPrice, PriceHistory, TokenCounts, price_history
from pricing.models import PriceOverride
from tenants.models import Tenant

MTOK = Decimal(1_000_000)
PROVIDER_ALIASES = {
    "bedrock": "aws",
    "amazon": "aws",
    "gemini": "google",
    "vertex": "google",
    "vertex_ai": "google",
    "google-vertex": "google",
    "xai": "x-ai",
    "azure_openai": "azure",
    "azure-openai": "azure",
}


class CostSource(models.TextChoices):
    OVERRIDE = "override", "Tenant price"
    CATALOG = "catalog", "Catalog price"
    CLIENT = "client", "Client-reported"
    UNPRICED = "unpriced", "Unpriced"


@dataclass(frozen=True)
class OverridePrice:
    effective_from: datetime
    input: Decimal
    output: Decimal
    cache_read: Decimal | None
    cache_write: Decimal | None

    def cost(self, t: TokenCounts) -> Decimal:
        read = self.cache_read if self.cache_read is not None else self.input
        write = self.cache_write if self.cache_write is not None else self.input
        uncached = t.input - t.cache_read - t.cache_write
        total = uncached * self.input + t.cache_read * read + t.cache_write * write
        return (total + t.output * self.output) / MTOK


def normalise_provider(provider: str) -> str:
    key = provider.strip().lower()
    return PROVIDER_ALIASES.get(key, key)


class TenantPricer:
    """Prices events for one tenant; build one per tenant and pricing version, then reuse."""

    def __init__(self, overrides: list[PriceOverride]) -> None:
        self._overrides: dict[tuple[str, str], list[OverridePrice]] = {}
        for row in sorted(overrides, key=lambda o: o.effective_from):
            key = (normalise_provider(row.provider), row.model.strip().lower())
            self._overrides.setdefault(key, []).append(
                OverridePrice(
                    row.effective_from,
                    row.input_per_mtok,
                    row.output_per_mtok,
                    row.cache_read_per_mtok,
                    row.cache_write_per_mtok,
                )
            )
        # (provider, model) as the client spelled them -> where their prices come from.
        self._models: dict[tuple[str, str], _ModelPrices] = {}

    def price(
        self,
        provider: str,
        model: str,
        tokens: TokenCounts,
        at: datetime,
        client_cost: Decimal | None = None,
    ) -> tuple[Decimal, str]:
        prices = self._models.get((provider, model)) or self._look_up(provider, model)
        override = prices.override_at(at)
        if override is not None:
            return override.cost(tokens), CostSource.OVERRIDE
        catalog = prices.catalog_at(at)
        if catalog is not None:
            return catalog.cost(tokens), CostSource.CATALOG
        if client_cost is not None:
            return client_cost, CostSource.CLIENT
        return ZERO, CostSource.UNPRICED

    def _look_up(self, provider: str, model: str) -> _ModelPrices:
        """Normalise the names and find their overrides and catalog entry once, not per event."""
        provider_key, model_key = normalise_provider(provider), model.strip().lower()
        history = self._overrides.get((provider_key, model_key), [])
        starts = [o.effective_from for o in history]
        prices = _ModelPrices(history, starts, price_history(provider_key, model_key))
        if len(self._models) >= MAX_MODELS:  # clients choose the names: stay bounded
            self._models.clear()
        self._models[(provider, model)] = prices
        return prices


MAX_MODELS = 4096


@dataclass
class _ModelPrices:
    overrides: list[OverridePrice]
    starts: list[datetime]
    catalog: PriceHistory | None

    def override_at(self, at: datetime) -> OverridePrice | None:
        if not self.overrides:
            return None
        index = bisect.bisect_right(self.starts, at) - 1
        return self.overrides[index] if index >= 0 else None

    def catalog_at(self, at: datetime) -> CatalogPrice | None:
        return None if self.catalog is None else self.catalog.at(at)


_pricers: dict[int, tuple[tuple[object, ...], TenantPricer]] = {}


def pricer_for(tenant: Tenant) -> TenantPricer:
    """A cached pricer; a new `pricing_version` (bumped on every override change) rebuilds it.

    The creation time is part of the key so a reused id (SQLite) never sees old prices.
    """
    version = (tenant.created_at, tenant.pricing_version)
    cached = _pricers.get(tenant.pk)
    if cached is not None and cached[0] == version:
        return cached[1]
    pricer = TenantPricer(list(PriceOverride.objects.for_tenant(tenant)))
    _pricers[tenant.pk] = (version, pricer)
    return pricer
