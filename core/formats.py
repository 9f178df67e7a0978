"""Numbers as finance reads them: dollars with cents, percentages, changes, compact counts.

Plain functions, so pages that build table rows in Python and the template filters of
`dashboard.templatetags.costboard` format alike."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def usd(value: Decimal | None) -> str:
    """$1,234.56; amounts under a cent keep four significant digits so they never read $0.00."""
    if value is None:
        return "—"
    amount = Decimal(value)
    if amount and abs(amount) < CENT:
        small = amount.normalize()
        return f"${small:.4g}" if abs(small) >= Decimal("0.0001") else f"${small:.2e}"
    return f"${amount.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def change(value: float | None) -> str:
    if value is None:
        return "new"
    arrow = "▲" if value > 0 else "▼" if value < 0 else "■"
    return f"{arrow} {abs(value) * 100:.1f}%"


def change_class(value: float | None) -> str:
    if value is None or abs(value) < 0.005:
        return "flat"
    return "up" if value > 0 else "down"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def compact(value: int | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)
