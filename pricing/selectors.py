"""Which price Costboard applies to a model, from where and since when: reads for `/prices/`.

The answers come from the same places the resolver prices events from (the tenant's
overrides, then the bundled catalog), so what the page shows is what ingest applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from genai_prices import types as gp

from pricing.catalog import END, price_history
from pricing.models import PriceOverride
from pricing.resolver import CATALOG, OVERRIDE, UNPRICED, normalise_provider
from tenants.models import Tenant

TOKEN_PARTS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


@dataclass(frozen=True)
class PriceShown:
    """One price as the page shows it: USD per million tokens, per token kind, as text."""

    source: str  # OVERRIDE, CATALOG or UNPRICED (client-reported is decided per call)
    since: datetime | None  # None: as far back as the catalog goes
    input: str
    output: str
    cache_read: str
    cache_write: str
    when: str = ""  # a time-of-day window, when the price holds only then
    override_id: int | None = None


def usd(value: Decimal) -> str:
    """A price without exponent notation or trailing zeros: 2.5, 0.075, 15."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _part(price: Decimal | gp.TieredPrices | None) -> str:
    if price is None:
        return ""
    if isinstance(price, gp.TieredPrices):
        tiers = "; ".join(
            f"{usd(t.price)} above {int(t.start):,} input tokens" for t in price.tiers
        )
        return f"{usd(price.base)}; {tiers}"
    return usd(price)


def _catalog_shown(price: gp.ModelPrice, since: datetime | None, when: str = "") -> PriceShown:
    i, o, r, w = (_part(getattr(price, name, None)) for name in TOKEN_PARTS)
    # Without a cache price, cached tokens bill as input (the library's rule, and ours).
    return PriceShown(CATALOG, since, i, o, r or "as input", w or "as input", when=when)


def _override_shown(row: PriceOverride) -> PriceShown:
    read, write = row.cache_read_per_mtok, row.cache_write_per_mtok
    return PriceShown(
        OVERRIDE,
        row.effective_from,
        usd(row.input_per_mtok),
        usd(row.output_per_mtok),
        "as input" if read is None else usd(read),
        "as input" if write is None else usd(write),
        override_id=row.pk,
    )


def _clock(at: time) -> str:
    return at.strftime("%H:%M")


def _catalog_entries(provider: str, model: str) -> list[tuple[object, PriceShown]]:
    """Every catalog price of a model with its constraint, in the catalog's order (a later
    one that holds wins, as in `pricing.catalog`)."""
    history = price_history(normalise_provider(provider), model.strip().lower())
    if history is None:
        return []
    prices = history.info.prices
    if isinstance(prices, gp.ModelPrice):
        return [(None, _catalog_shown(prices, None))]
    windows = any(isinstance(c.constraint, gp.TimeOfDateConstraint) for c in prices)
    entries: list[tuple[object, PriceShown]] = []
    for conditional in prices:
        constraint, since, when = conditional.constraint, None, ""
        if isinstance(constraint, gp.TimeOfDateConstraint):
            when = f"{_clock(constraint.start_time)}-{_clock(constraint.end_time)} UTC daily"
        elif isinstance(constraint, gp.StartDateConstraint):
            since = datetime.combine(constraint.start_date, time(), UTC)
        elif windows:
            when = "other times of day"
        entries.append((constraint, _catalog_shown(conditional.prices, since, when)))
    return entries


def _active(constraint: object, at: datetime) -> bool:
    return constraint is None or bool(getattr(constraint, "active", lambda _: True)(at))


def catalog_prices(provider: str, model: str, start: datetime, end: datetime) -> list[PriceShown]:
    """The catalog's prices of a model that hold at some moment of [start, end): the one in
    force at `start`, those that start later in it, and every time-of-day price."""
    entries = _catalog_entries(provider, model)
    at_start = [s for c, s in entries if not s.when and _active(c, start)][-1:]
    return [s for _, s in entries if s.when or s in at_start or (s.since and start < s.since < end)]


def catalog_price_now(provider: str, model: str, now: datetime) -> PriceShown | None:
    """The catalog price a call at `now` gets: the last of its prices that holds then."""
    held = [s for c, s in _catalog_entries(provider, model) if _active(c, now)]
    return held[-1] if held else None


def overrides_of(tenant: Tenant) -> dict[tuple[str, str], list[PriceOverride]]:
    """The tenant's overrides by normalised (provider, model), oldest first."""
    out: dict[tuple[str, str], list[PriceOverride]] = {}
    for row in PriceOverride.objects.for_tenant(tenant).order_by("effective_from"):
        key = (normalise_provider(row.provider), row.model.strip().lower())
        out.setdefault(key, []).append(row)
    return out


def _holds(row: PriceOverride, start: datetime, end: datetime) -> bool:
    return row.effective_from < end and (row.ended_at is None or row.ended_at > start)


@dataclass(frozen=True)
class ModelPrices:
    """A model's price now and the prices that held over a period, newest first."""

    now: PriceShown | None  # None: unpriced now (no override, not in the catalog)
    period: list[PriceShown]


def model_prices(
    overrides: list[PriceOverride], provider: str, model: str, start: datetime, end: datetime
) -> ModelPrices:
    """`overrides`: this model's, from `overrides_of`. The override in force wins over the
    catalog, as in `pricing.resolver`."""
    now = datetime.now(UTC)
    live = [o for o in overrides if o.effective_from <= now and _holds(o, now, END)]
    catalog = catalog_prices(provider, model, start, end)
    used = [_override_shown(o) for o in reversed(overrides) if _holds(o, start, end)]
    if live:
        price_now: PriceShown | None = _override_shown(live[-1])
    else:
        price_now = catalog_price_now(provider, model, now)
    return ModelPrices(price_now, used + list(reversed(catalog)))


__all__ = [
    "CATALOG",
    "OVERRIDE",
    "UNPRICED",
    "ModelPrices",
    "PriceShown",
    "model_prices",
    "normalise_provider",
]


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of `first`, end of `last`) in UTC."""
    start = datetime.combine(first, time(), UTC)
    return start, datetime.combine(last, time(), UTC) + timedelta(days=1)
