"""Prices from the bundled `genai-prices` catalog, resolved once and reused.

`genai_prices.calc_price` looks the model up and walks its unit registry on every call
(~60-150 µs). At ingest rates that is too slow, so we resolve a model's `ModelPrice` for a
timestamp once (cached per provider, model and price period) and price events with the same
unit arithmetic the library uses (`calc_unit_price`, cliff tiers on total input tokens).
`tests/pricing/test_catalog.py` checks the shortcut against `calc_price` across the catalog.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from genai_prices import Usage, data_snapshot
from genai_prices import types as gp

ZERO = Decimal(0)
# Prices we can apply from our four token counts. A model priced on anything else (audio,
# images, web searches) is still priced here: those units simply have a count of zero.
TOKEN_KEYS = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok")


class TokenCounts(NamedTuple):
    # A NamedTuple, not a frozen dataclass: ingest builds one per event, ~4x cheaper this way.
    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0


@dataclass(frozen=True)
class CatalogPrice:
    """One resolved catalog price; `cost` prices a call."""

    model_price: gp.ModelPrice
    provider_id: str
    model_id: str

    def cost(self, tokens: TokenCounts) -> Decimal:
        return _cost(self._prices, tokens)

    @functools.cached_property
    def _prices(self) -> _Prices:
        # Read once: ModelPrice's attribute lookups go through its unit registry.
        mp = self.model_price.__dict__
        return _Prices(*(mp.get(key) for key in _Prices._fields))


Price = Decimal | gp.TieredPrices | None


class _Prices(NamedTuple):
    input_mtok: Price
    cache_read_mtok: Price
    cache_write_mtok: Price
    output_mtok: Price
    requests_kcount: Price


def _cost(p: _Prices, t: TokenCounts) -> Decimal:
    """`calc_price`'s sum, part by part in its order; a part without a price adds nothing."""
    # Cached tokens are part of input_tokens; without a cache price they bill as plain input.
    uncached = t.input
    uncached -= t.cache_read if p.cache_read_mtok is not None else 0
    uncached -= t.cache_write if p.cache_write_mtok is not None else 0
    parts = (
        (p.input_mtok, uncached, 1_000_000),
        (p.cache_read_mtok, t.cache_read, 1_000_000),
        (p.cache_write_mtok, t.cache_write, 1_000_000),
        (p.output_mtok, t.output, 1_000_000),
        (p.requests_kcount, 1, 1_000),
    )
    total = ZERO
    for price, count, per in parts:
        if price is None:
            continue
        if type(price) is Decimal:
            total += price * count / per  # calc_unit_price's arithmetic for a flat price
        else:
            total += gp.calc_unit_price(price, count, t.input, per)
    return total


@functools.lru_cache(maxsize=4096)
def _find_model(provider: str, model: str) -> tuple[gp.Provider, gp.ModelInfo] | None:
    snapshot = data_snapshot.get_snapshot()
    try:
        return snapshot.find_provider_model(model, None, provider, None)
    except LookupError:
        return None


def _period_key(info: gp.ModelInfo, at: datetime) -> int:
    """Index of the conditional price active at `at`: the 'price period' we cache on."""
    if isinstance(info.prices, gp.ModelPrice):
        return 0
    for index in range(len(info.prices) - 1, -1, -1):
        constraint = info.prices[index].constraint
        if constraint is None or constraint.active(at):
            return index
    return 0


@functools.lru_cache(maxsize=16384)
def _resolved(provider: str, model: str, period: int) -> CatalogPrice | None:
    found = _find_model(provider, model)
    if found is None:
        return None
    prov, info = found
    mp = info.prices if isinstance(info.prices, gp.ModelPrice) else info.prices[period].prices
    return CatalogPrice(model_price=mp, provider_id=prov.id, model_id=info.id)


def catalog_price(provider: str, model: str, at: datetime) -> CatalogPrice | None:
    """The catalog price for a call at `at`, or None when the catalog does not know the model."""
    history = price_history(provider.strip().lower(), model.strip().lower())
    return None if history is None else history.at(at)


@dataclass(frozen=True)
class PriceHistory:
    """A catalog model's prices over time: look it up once, then price each call's moment."""

    provider: str
    model: str
    info: gp.ModelInfo

    def at(self, at: datetime) -> CatalogPrice | None:
        return _resolved(self.provider, self.model, _period_key(self.info, at))


@functools.lru_cache(maxsize=4096)
def price_history(provider: str, model: str) -> PriceHistory | None:
    """For names already stripped and lowercased; None when the catalog does not know them."""
    found = _find_model(provider, model)
    return None if found is None else PriceHistory(provider, model, found[1])


def reference_cost(provider: str, model: str, tokens: TokenCounts, at: datetime) -> Decimal:
    """The library's own answer, slow; used by tests to check `CatalogPrice.cost`."""
    from genai_prices import calc_price

    usage = Usage(
        input_tokens=tokens.input,
        output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
    )
    return calc_price(usage, model, provider_id=provider, genai_request_timestamp=at).total_price
