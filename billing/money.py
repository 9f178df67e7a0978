"""Money rules for invoices: Decimal only, cents per line, shares that add up to the cent."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

ZERO = Decimal(0)
CENT = Decimal("0.01")


def to_cents(value: Decimal) -> Decimal:
    """Round to cents, half away from zero (0.005 -> 0.01, -0.005 -> -0.01)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def largest_remainder(total: int, weights: list[Decimal]) -> list[int]:
    """Split the integer `total` in proportion to `weights`; the parts add up to `total`.

    Each part gets the floor of its exact quota, then the units left over go to the parts
    with the largest remainders (ties: the earlier part). Exact fractions, no floats.
    """
    whole = sum((Fraction(w) for w in weights), Fraction(0))
    if whole <= 0:
        raise ValueError("weights must add up to more than zero")
    sign, amount = (-1, -total) if total < 0 else (1, total)
    quotas = [amount * Fraction(w) / whole for w in weights]
    parts = [int(q) for q in quotas]  # floor: quotas are not negative
    by_remainder = sorted(range(len(quotas)), key=lambda i: (parts[i] - quotas[i], i))
    for i in by_remainder[: amount - sum(parts)]:
        parts[i] += 1
    return [sign * p for p in parts]


def cents(value: Decimal) -> int:
    return int(to_cents(value) / CENT)


def from_cents(count: int) -> Decimal:
    return Decimal(count) * CENT
