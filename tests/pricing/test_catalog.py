"""Our cached catalog pricing must equal genai-prices' own `calc_price`, to the last digit."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import data_snapshot

from pricing.catalog import TokenCounts, catalog_price, reference_cost

MOMENTS = [
    datetime(2024, 3, 1, 3, tzinfo=UTC),
    datetime(2025, 9, 1, 17, 45, tzinfo=UTC),
    datetime(2026, 1, 15, 23, 59, tzinfo=UTC),
]


def _models() -> list[tuple[str, str]]:
    snapshot = data_snapshot.get_snapshot()
    return [(p.id, m.id) for p in snapshot.providers for m in p.models]


def _usage(rng: random.Random) -> TokenCounts:
    total = rng.choice([0, 1, 999, 128_000, 200_001, 1_500_000])
    read = rng.randint(0, total // 2)
    write = rng.randint(0, (total - read) // 2)
    return TokenCounts(total, rng.randint(0, 20_000), read, write)


def test_it_prices_every_catalog_model_like_calc_price() -> None:
    rng = random.Random(7)
    compared = 0
    for provider, model in _models():
        for at in MOMENTS:
            tokens = _usage(rng)
            try:
                expected = reference_cost(provider, model, tokens, at)
            except (ValueError, LookupError):
                continue  # the library itself cannot price this usage shape
            price = catalog_price(provider, model, at)
            assert price is not None
            assert price.cost(tokens) == expected, (provider, model, tokens, at)
            compared += 1
    assert compared > 1000


@pytest.mark.parametrize(
    ("provider", "model", "tokens", "expected"),
    [
        # The seed's worked example at today's catalog price for gpt-4o ($2.50 / $10 per MTok).
        ("openai", "gpt-4o", TokenCounts(1000, 500), Decimal("0.0075")),
        # Cached reads bill at the cache price ($1.25), not the input price.
        ("openai", "gpt-4o", TokenCounts(1000, 0, cache_read=1000), Decimal("0.00125")),
    ],
)
def test_it_prices_known_examples(
    provider: str, model: str, tokens: TokenCounts, expected: Decimal
) -> None:
    price = catalog_price(provider, model, datetime(2025, 6, 1, tzinfo=UTC))
    assert price is not None and price.cost(tokens) == expected


def test_it_does_not_know_made_up_models() -> None:
    assert catalog_price("acme", "secret-llm", datetime.now(UTC)) is None
    assert catalog_price("openai", "gpt-nonexistent-9000", datetime.now(UTC)) is None
