"""Prices from the bundled `genai-prices` catalog, resolved once and reused.

`genai_prices.calc_price` looks the model up and walks its unit registry on every call
(~60-150 µs). At ingest rates that is too slow, so we resolve a model's `ModelPrice` for a
timestamp once (cached per provider, model and price period) and price events with the same
unit arithmetic the library uses (`calc_unit_price`, cliff tiers on total input tokens).
`tests/pricing/test_catalog.py` checks the shortcut against `calc_price` across the catalog.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple

from genai_prices import Usage, data_snapshot
from genai_prices import types as gp

ZERO = Decimal(0)
# Prices we can apply from our four token counts. A model priced on anything else (audio,
# images, web searches) is still priced here: those units simply have a count of zero.
TOKEN_KEYS = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok")
# The ends of time, as bounds of a price period that has none.
BEGINNING = datetime.min.replace(tzinfo=UTC)
END = datetime.max.replace(tzinfo=UTC)
DAY = timedelta(days=1)


class TokenCounts(NamedTuple):
    # A NamedTuple, not a frozen dataclass: ingest builds one per event, ~4x cheaper this way.
    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0


# A price as a function of (input, output, cache_read, cache_write) token counts.
CostFn = Callable[[int, int, int, int], Decimal]


@dataclass(frozen=True)
class CatalogPrice:
    """One resolved catalog price; `cost` prices a call."""

    model_price: gp.ModelPrice
    provider_id: str
    model_id: str

    def cost(self, tokens: TokenCounts) -> Decimal:
        return self.cost_of(*tokens)

    @functools.cached_property
    def cost_of(self) -> CostFn:
        """`cost` from the four counts, without building a TokenCounts (ingest's hot path)."""
        return _cost_function(self._prices)

    @functools.cached_property
    def first_tier(self) -> int | None:
        """The input-token count above which a call leaves the base tier (None: no tiers)."""
        starts = [
            math.floor(t.start)
            for price in self._prices
            if isinstance(price, gp.TieredPrices)
            for t in price.tiers
        ]
        return min(starts, default=None)

    @functools.cached_property
    def base_cost_of(self) -> CostFn:
        """`cost_of` for calls of at most `first_tier` input tokens, for any counts: what a
        sum of such calls costs (the what-if page prices token sums, not calls)."""
        return _flat_cost(_Prices(*(_tier_price(price, 0) for price in self._prices)))

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
    """`calc_price`'s sum, part by part in its order; a part without a price adds nothing.

    The reference for `_cost_function`, which computes the same values faster."""
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


def _cost_function(p: _Prices) -> CostFn:
    """A function equal to `_cost(p, ...)` for every count, several times faster.

    Tiered prices are cliffs on the total input tokens, so between two tier starts every
    price is flat: one flat function per band of input counts, chosen by bisection."""
    if any(not isinstance(price, Decimal | gp.TieredPrices | None) for price in p):
        return _reference(p)  # nothing like it in the catalog; priced as the library would
    starts = sorted(
        {t.start for price in p if isinstance(price, gp.TieredPrices) for t in price.tiers}
    )
    if not starts:
        return _flat_cost(p)
    # Band k holds the input counts above exactly k of the starts; each is priced as
    # calc_unit_price prices its smallest count (any count of it gets the same tiers).
    counts = [math.floor(starts[0]), *(math.floor(start) + 1 for start in starts)]
    bands = [_flat_cost(_Prices(*(_tier_price(price, n) for price in p))) for n in counts]

    def cost(input: int, output: int, cache_read: int, cache_write: int) -> Decimal:
        band = bands[bisect.bisect_left(starts, input)]
        return band(input, output, cache_read, cache_write)

    return cost


def _tier_price(price: Price, input_tokens: int) -> Price:
    """The flat price calc_unit_price applies to a call of `input_tokens`, in its own way."""
    if not isinstance(price, gp.TieredPrices):
        return price
    for tier in reversed(price.tiers):
        if input_tokens > tier.start:
            return tier.price
    return price.base


def _reference(p: _Prices) -> CostFn:
    def cost(input: int, output: int, cache_read: int, cache_write: int) -> Decimal:
        return _cost(p, TokenCounts(input, output, cache_read, cache_write))

    return cost


def _flat_cost(p: _Prices) -> CostFn:
    """`_cost` for flat prices with per-token prices and no loop.

    price / per is exact (only the exponent moves), and (price / per) * count rounds, if
    ever, at the same digit as calc_unit_price's price * count / per, which then divides
    exactly: the same values, term by term. The terms are added in `_cost`'s order; a price
    the catalog lacks adds an exact zero, which changes no sum."""
    flat = [price for price in p if type(price) is Decimal or price is None]
    if len(flat) != len(p):
        return _reference(p)  # a tier price that is not a Decimal: leave it to the library
    i, r, w, o = (None if price is None else price / 1_000_000 for price in flat[:4])
    if i is not None and r is not None and o is not None and p.requests_kcount is None:
        if w is None:  # OpenAI, Google, DeepSeek, ...: a cache read price only

            def read_only(input: int, output: int, cache_read: int, cache_write: int) -> Decimal:
                return (input - cache_read) * i + cache_read * r + output * o

            return read_only
        # Anthropic and others: read and write cache prices

        def read_write(input: int, output: int, cache_read: int, cache_write: int) -> Decimal:
            return (
                (input - cache_read - cache_write) * i
                + cache_read * r
                + cache_write * w
                + output * o
            )

        return read_write
    # Any other shape: absent prices as exact zeros; uncached tokens keep what bills as input.
    read_in, write_in = int(r is not None), int(w is not None)
    i0, r0, w0, o0 = (ZERO if x is None else x for x in (i, r, w, o))
    request = ZERO if flat[4] is None else flat[4] / 1_000

    def any_shape(input: int, output: int, cache_read: int, cache_write: int) -> Decimal:
        uncached = input - cache_read * read_in - cache_write * write_in
        return uncached * i0 + cache_read * r0 + cache_write * w0 + output * o0 + request

    return any_shape


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


def _changes(info: gp.ModelInfo, at: datetime) -> list[datetime] | None:
    """The moments near `at` where one of the model's price constraints may change its
    answer (`_period_key` is constant between two of them), or None for a constraint we do
    not know how to bound: then nothing is cached for it.

    A start date applies from its UTC midnight; a time of day window starts and ends at the
    same UTC times each day, so the days around `at` hold its moments just before and after.
    """
    assert not isinstance(info.prices, gp.ModelPrice)
    day = at.astimezone(UTC).date()
    moments = []
    try:
        for conditional in info.prices:
            constraint = conditional.constraint
            if constraint is None:
                continue
            if type(constraint) is gp.StartDateConstraint:
                moments.append(datetime.combine(constraint.start_date, time(), UTC))
            elif type(constraint) is gp.TimeOfDateConstraint:
                for clock in (constraint.start_time, constraint.end_time):
                    utc = _utc_clock(clock)
                    moments += [datetime.combine(day + d * DAY, utc) for d in (-1, 0, 1)]
            else:
                return None
    except OverflowError:  # the first or last day a datetime can hold
        return None
    return moments


def _utc_clock(clock: time) -> time:
    """A time of day as UTC, as TimeOfDateConstraint reads it (naive times are UTC)."""
    if clock.tzinfo is None:
        return clock.replace(tzinfo=UTC)
    return datetime.combine(date(1970, 1, 1), clock).astimezone(UTC).timetz()


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


class Period(NamedTuple):
    """A price and the span of time [start, end) it holds for (UTC bounds)."""

    start: datetime
    end: datetime
    price: CatalogPrice | None


@dataclass(frozen=True)
class PriceHistory:
    """A catalog model's prices over time: look it up once, then price each call's moment."""

    provider: str
    model: str
    info: gp.ModelInfo

    def at(self, at: datetime) -> CatalogPrice | None:
        return _resolved(self.provider, self.model, _period_key(self.info, at))

    def period(self, at: datetime) -> Period:
        """The price at `at` and the whole span around it with the same price, so a caller
        can reuse it for any moment in that span; an empty span if it cannot be bounded."""
        price = self.at(at)
        if isinstance(self.info.prices, gp.ModelPrice):
            return Period(BEGINNING, END, price)
        moments = _changes(self.info, at)
        if moments is None:
            return Period(at, at, price)
        start = max((m for m in moments if m <= at), default=BEGINNING)
        return Period(start, min((m for m in moments if m > at), default=END), price)


class _Seen:
    snapshot: object = None
    generation = 0


def catalog_generation() -> int:
    """A number that changes whenever genai-prices' data changes in this process (its
    updater fetched a new snapshot, see `pricing.catalog_updates`); every price cached from
    the old data is dropped then, so the next call is priced from the new data."""
    current = data_snapshot.get_snapshot()
    if current is not _Seen.snapshot:
        if _Seen.snapshot is not None:
            _find_model.cache_clear()
            _resolved.cache_clear()
            _price_history.cache_clear()
            _Seen.generation += 1
        _Seen.snapshot = current
    return _Seen.generation


def price_history(provider: str, model: str) -> PriceHistory | None:
    """For names already stripped and lowercased; None when the catalog does not know them."""
    catalog_generation()
    return _price_history(provider, model)


@functools.lru_cache(maxsize=4096)
def _price_history(provider: str, model: str) -> PriceHistory | None:
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


def catalog_model_id(provider: str, model: str) -> str | None:
    """The catalog's id of a reported provider/model (`gpt-4o` for `gpt-4o-2024-08-06`),
    found by the library's own matching; None when the catalog does not know the model."""
    history = price_history(provider.strip().lower(), model.strip().lower())
    return None if history is None else history.info.id
