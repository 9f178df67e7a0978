"""A pricer reuses a price for its whole period: never past its end, never over an override.

Each test prices moments in an order that would reuse a stale period if its end were wrong
(ascending: the period just left; descending: the next one back), with one pricer per order,
and compares every cost with an answer worked out without any cache.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from genai_prices import data_snapshot
from genai_prices import types as gp

from pricing.catalog import TokenCounts, catalog_price, reference_cost
from pricing.models import PriceOverride
from pricing.resolver import TenantPricer

US = timedelta(microseconds=1)
TOKENS = TokenCounts(1_234_567, 8_901, 200_000, 34_567)
KOLKATA = timezone(timedelta(hours=5, minutes=30))


def _orders(moments: list[datetime]) -> list[list[datetime]]:
    ordered = sorted(moments)
    shuffled = ordered[:]
    random.Random(3).shuffle(shuffled)
    return [ordered, ordered[::-1], shuffled]


def _around(moment: datetime) -> list[datetime]:
    # Just before, at and just after a change, once in another offset than UTC.
    return [moment - US, moment, moment + US, (moment + US).astimezone(KOLKATA)]


def _conditional_models() -> list[tuple[str, str, gp.ModelInfo]]:
    snapshot = data_snapshot.get_snapshot()
    return [
        (p.id, m.id, m) for p in snapshot.providers for m in p.models if isinstance(m.prices, list)
    ]


def _changes(info: gp.ModelInfo) -> list[datetime]:
    """Each constraint's own moments of change, read straight from the catalog."""
    moments = []
    assert isinstance(info.prices, list)
    for conditional in info.prices:
        c = conditional.constraint
        if isinstance(c, gp.StartDateConstraint):
            moments.append(datetime.combine(c.start_date, time(), UTC))
        elif isinstance(c, gp.TimeOfDateConstraint):
            for clock in (c.start_time, c.end_time):
                for day in (date(2025, 6, 30), date(2025, 7, 1)):
                    moments.append(datetime.combine(day, clock.replace(tzinfo=UTC)))
    return moments


def test_it_prices_conditional_catalog_models_like_calc_price_across_their_changes() -> None:
    models = _conditional_models()
    constraints = [c.constraint for *_, m in models for c in m.prices]  # type: ignore[union-attr]
    assert any(isinstance(c, gp.TimeOfDateConstraint) for c in constraints)
    compared = 0
    for provider, model, info in models:
        moments = [m for change in _changes(info) for m in _around(change)]
        expected = {}
        for at in moments:
            try:
                expected[at] = reference_cost(provider, model, TOKENS, at)
            except (ValueError, LookupError):
                continue  # the library itself cannot price this usage shape
        for order in _orders(list(expected)):
            pricer = TenantPricer([])
            for at in order:
                cost, source = pricer.price(provider, model, TOKENS, at)
                assert (cost, source) == (expected[at], "catalog"), (provider, model, at)
                compared += 1
    assert compared > 1000


def test_it_prices_tier_boundaries_like_calc_price() -> None:
    snapshot = data_snapshot.get_snapshot()
    at = datetime(2025, 9, 1, tzinfo=UTC)
    compared = 0
    for p in snapshot.providers:
        for m in p.models:
            price = catalog_price(p.id, m.id, at)
            if price is None:
                continue  # found by another spelling only
            starts = {
                tier.start
                for value in price.model_price.__dict__.values()
                if isinstance(value, gp.TieredPrices)
                for tier in value.tiers
            }
            for start in starts:
                for n in (start - 1, start, start + 1):
                    tokens = TokenCounts(n, 777, n // 3, n // 5)
                    try:
                        expected = reference_cost(p.id, m.id, tokens, at)
                    except (ValueError, LookupError):
                        continue
                    assert price.cost(tokens) == expected, (p.id, m.id, n)
                    compared += 1
    assert compared > 30


JUNE = datetime(2025, 6, 1, tzinfo=UTC)
JULY = datetime(2025, 7, 1, tzinfo=UTC)


def _override(start: datetime, price: str, model: str = "gpt-4o") -> PriceOverride:
    return PriceOverride(
        provider="openai",
        model=model,
        effective_from=start,
        input_per_mtok=Decimal(price),
        output_per_mtok=Decimal("10"),
        cache_read_per_mtok=Decimal("0.5"),
        cache_write_per_mtok=None,
    )


def _override_cost(input_price: str, t: TokenCounts) -> Decimal:
    uncached = t.input - t.cache_read - t.cache_write
    total = (uncached + t.cache_write) * Decimal(input_price) + t.cache_read * Decimal("0.5")
    return (total + t.output * Decimal("10")) / Decimal(1_000_000)


def test_it_switches_between_catalog_and_overrides_exactly_at_their_starts() -> None:
    overrides = [_override(JUNE, "4"), _override(JULY.astimezone(KOLKATA), "3")]
    moments = [JUNE - timedelta(days=40), *_around(JUNE), *_around(JULY), JULY + timedelta(days=90)]
    for order in _orders(moments):
        pricer = TenantPricer(overrides)
        for at in order:
            expected = (
                (reference_cost("openai", "gpt-4o", TOKENS, at), "catalog")
                if at < JUNE
                else (_override_cost("4" if at < JULY else "3", TOKENS), "override")
            )
            assert pricer.price("openai", "gpt-4o", TOKENS, at) == expected, at


def test_it_cuts_a_catalog_period_where_an_override_starts() -> None:
    # deepseek-chat's catalog price holds from 00:30 to 16:30 UTC; the override starts inside.
    starts = datetime(2025, 7, 1, 10, tzinfo=UTC)
    pricer = TenantPricer([_override(starts, "2", model="deepseek-chat")])
    pricer._overrides[("deepseek", "deepseek-chat")] = pricer._overrides.pop(
        ("openai", "deepseek-chat")
    )
    for at in (starts - timedelta(hours=9), starts - US, starts, starts + timedelta(hours=7)):
        cost, source = pricer.price("deepseek", "deepseek-chat", TOKENS, at)
        if at < starts:
            assert (cost, source) == (
                reference_cost("deepseek", "deepseek-chat", TOKENS, at),
                "catalog",
            )
        else:
            assert (cost, source) == (_override_cost("2", TOKENS), "override")


@pytest.mark.parametrize("client_cost", [None, Decimal("0.25")])
def test_it_prices_an_unknown_model_until_its_first_override(client_cost: Decimal | None) -> None:
    pricer = TenantPricer([_override(JULY, "1", model="in-house")])
    fallback = (client_cost, "client") if client_cost is not None else (Decimal(0), "unpriced")
    for at in (JULY - US, JULY, JULY - US):
        expected = fallback if at < JULY else (_override_cost("1", TOKENS), "override")
        assert pricer.price("openai", "in-house", TOKENS, at, client_cost) == expected
