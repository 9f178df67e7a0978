"""Number formatting that finance can read: dollars with cents, percentages, changes."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django import template

register = template.Library()
CENT = Decimal("0.01")


@register.filter
def usd(value: Decimal | None) -> str:
    """$1,234.56; amounts under a cent keep four significant digits so they never read $0.00."""
    if value is None:
        return "—"
    amount = Decimal(value)
    if amount and abs(amount) < CENT:
        small = amount.normalize()
        return f"${small:.4g}" if abs(small) >= Decimal("0.0001") else f"${small:.2e}"
    return f"${amount.quantize(CENT, rounding=ROUND_HALF_UP):,}"


@register.filter
def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


@register.filter
def change(value: float | None) -> str:
    if value is None:
        return "new"
    arrow = "▲" if value > 0 else "▼" if value < 0 else "■"
    return f"{arrow} {abs(value) * 100:.1f}%"


@register.filter
def change_class(value: float | None) -> str:
    if value is None or abs(value) < 0.005:
        return "flat"
    return "up" if value > 0 else "down"


@register.filter
def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


@register.filter
def compact(value: int | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


@register.filter
def latency_p(totals: object, q: float) -> float | None:
    """The q-quantile latency of a `Totals` in ms."""
    latency = getattr(totals, "latency", None)
    return latency(float(q)) if latency else None
