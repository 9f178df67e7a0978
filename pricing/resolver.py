"""Choose each event's cost in SPEC.md's order and record where it came from.

tenant override at the event's time -> bundled catalog at the event's time -> the client's
cost_usd -> unpriced (cost 0, reported as unpriced usage, never as free).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import models

from pricing.catalog import (
    BEGINNING,
    END,
    ZERO,
    CostFn,
    PriceHistory,
    TokenCounts,
    catalog_generation,
    price_history,
)
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


# The sources as plain strings, as stored: what `price` returns, ready for a row.
OVERRIDE, CATALOG, CLIENT, UNPRICED = (str(s.value) for s in CostSource)


@dataclass(frozen=True)
class OverridePrice:
    effective_from: datetime
    ended_at: datetime
    input: Decimal
    output: Decimal
    cache_read: Decimal | None
    cache_write: Decimal | None

    def cost_of(self, input: int, output: int, cache_read: int, cache_write: int) -> Decimal:
        read = self.cache_read if self.cache_read is not None else self.input
        write = self.cache_write if self.cache_write is not None else self.input
        uncached = input - cache_read - cache_write
        total = uncached * self.input + cache_read * read + cache_write * write
        return (total + output * self.output) / MTOK


def normalise_provider(provider: str) -> str:
    key = provider.strip().lower()
    return PROVIDER_ALIASES.get(key, key)


def _utc(at: datetime) -> datetime:
    """`at` with the UTC tzinfo object (naive means UTC, as the catalog reads it).

    Comparing two datetimes with the same tzinfo object is ~30x cheaper than with different
    ones (which converts both), and each event is compared with its cached price period."""
    if at.tzinfo is UTC:
        return at
    return at.astimezone(UTC) if at.tzinfo is not None else at.replace(tzinfo=UTC)


class TenantPricer:
    """Prices events for one tenant; build one per tenant and pricing version, then reuse."""

    def __init__(self, overrides: list[PriceOverride]) -> None:
        self._overrides: dict[tuple[str, str], list[OverridePrice]] = {}
        for row in sorted(overrides, key=lambda o: o.effective_from):
            key = (normalise_provider(row.provider), row.model.strip().lower())
            self._overrides.setdefault(key, []).append(
                OverridePrice(
                    _utc(row.effective_from),
                    END if row.ended_at is None else _utc(row.ended_at),
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
        return self.price_counts(provider, model, at, *tokens, client_cost)

    def price_counts(
        self,
        provider: str,
        model: str,
        at: datetime,
        input: int,
        output: int,
        cache_read: int,
        cache_write: int,
        client_cost: Decimal | None,
    ) -> tuple[Decimal, str]:
        """`price` from the four counts, without building a TokenCounts: ingest's hot path."""
        prices = self._models.get((provider, model)) or self._look_up(provider, model)
        if at.tzinfo is not UTC:  # tested here first: ingest passes UTC, a call saved
            at = _utc(at)
        period = prices.period
        # The last period used, if `at` falls in it: events of a batch are mostly close in
        # time, and finding a period (a bisection, the catalog's constraints) costs more.
        if not period.start <= at < period.end:
            period = prices.period = prices.period_at(at)
        if period.cost is not None:
            return period.cost(input, output, cache_read, cache_write), period.source
        if client_cost is not None:
            return client_cost, CLIENT
        return ZERO, UNPRICED

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


class _Period(NamedTuple):
    """Where a model's cost comes from during [start, end) (UTC); no cost: the client's or
    none (unpriced), decided per event."""

    start: datetime
    end: datetime
    cost: CostFn | None
    source: str


# Matches no moment: a model's first event finds its period.
_NO_PERIOD = _Period(END, END, None, UNPRICED)


@dataclass
class _ModelPrices:
    overrides: list[OverridePrice]
    starts: list[datetime]  # UTC, ascending
    catalog: PriceHistory | None
    period: _Period = field(default=_NO_PERIOD)

    def period_at(self, at: datetime) -> _Period:
        """The price at `at` (UTC) in SPEC's order, and the span it holds for: an override
        from its start to the next one's; the catalog's own period, cut short where the
        first override starts, or from where an ended override stops."""
        index = bisect.bisect_right(self.starts, at) - 1
        after, before = BEGINNING, self.starts[0] if self.starts else END
        if index >= 0:
            override = self.overrides[index]
            before = self.starts[index + 1] if index + 1 < len(self.starts) else END
            if at < override.ended_at:
                end = min(before, override.ended_at)
                return _Period(self.starts[index], end, override.cost_of, OVERRIDE)
            after = override.ended_at
        if self.catalog is None:
            return _Period(after, before, None, UNPRICED)
        start, end, price = self.catalog.period(at)
        source = UNPRICED if price is None else CATALOG
        cost = None if price is None else price.cost_of
        return _Period(max(start, after), min(end, before), cost, source)


_pricers: dict[int, tuple[tuple[object, ...], TenantPricer]] = {}


def pricer_for(tenant: Tenant) -> TenantPricer:
    """A cached pricer; a new `pricing_version` (bumped on every override change) rebuilds it.

    The creation time is part of the key so a tenant id handed out again (after the id sequence
    restarts: `manage.py flush`, a restored backup) never sees another tenant's prices.
    """
    # The catalog's generation too: an update of its data must not leave old prices cached.
    version = (tenant.created_at, tenant.pricing_version, catalog_generation())
    cached = _pricers.get(tenant.pk)
    if cached is not None and cached[0] == version:
        return cached[1]
    pricer = TenantPricer(list(PriceOverride.objects.for_tenant(tenant)))
    _pricers[tenant.pk] = (version, pricer)
    return pricer
