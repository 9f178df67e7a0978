from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from audit.models import Action
from audit.services import Actor, record
from pricing.models import PriceOverride
from tenants import keycache
from tenants.models import Tenant


@transaction.atomic
def set_price_override(
    tenant: Tenant,
    *,
    provider: str,
    model: str,
    effective_from: datetime,
    input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    cache_read_per_mtok: Decimal | None = None,
    cache_write_per_mtok: Decimal | None = None,
    actor: Actor = None,
) -> PriceOverride:
    """Create or update the override starting at `effective_from`.

    Events already stored keep their cost: a price change never rewrites history silently;
    `rollup --since` re-prices on purpose.
    """
    override, _ = PriceOverride.objects.for_tenant(tenant).update_or_create(
        provider=provider.strip().lower(),
        model=model.strip().lower(),
        effective_from=effective_from,
        defaults={
            "tenant": tenant,
            "input_per_mtok": input_per_mtok,
            "output_per_mtok": output_per_mtok,
            "cache_read_per_mtok": cache_read_per_mtok,
            "cache_write_per_mtok": cache_write_per_mtok,
        },
    )
    _bump_pricing_version(tenant)
    record(tenant, actor, Action.PRICE_SET, _label(override), _prices(override))
    return override


def _label(override: PriceOverride) -> str:
    return f"{override.provider}/{override.model} from {override.effective_from.isoformat()}"


def _prices(override: PriceOverride) -> dict[str, str | None]:
    # Decimals as text: JSON has no exact decimal, and money is never a float here.
    fields = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")
    values = {f: getattr(override, f) for f in fields}
    return {f: None if v is None else str(v) for f, v in values.items()}


@transaction.atomic
def delete_price_override(tenant: Tenant, override_id: int, *, actor: Actor = None) -> None:
    override = PriceOverride.objects.for_tenant(tenant).filter(pk=override_id).first()
    if override is None:
        return
    override.delete()
    _bump_pricing_version(tenant)
    record(tenant, actor, Action.PRICE_DELETED, _label(override), _prices(override))


def _bump_pricing_version(tenant: Tenant) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(pricing_version=F("pricing_version") + 1)
    tenant.refresh_from_db(fields=["pricing_version"])
    keycache.clear()  # cached keys carry their tenant's pricing version


class PriceError(ValueError):
    """A price change the rules refuse; the message names the field."""


@transaction.atomic
def end_price_override(
    tenant: Tenant, override_id: int, ended_at: datetime, *, actor: Actor = None
) -> PriceOverride:
    """Stop an override at `ended_at`: from then on the catalog prices the model again.

    Like adding a price, ending one changes no stored event until a re-price is applied."""
    override = PriceOverride.objects.for_tenant(tenant).select_for_update().get(pk=override_id)
    if ended_at <= override.effective_from:
        raise PriceError(
            f"ended_at: must be after the price's start ({override.effective_from:%Y-%m-%d %H:%M})"
        )
    override.ended_at = ended_at
    override.save(update_fields=["ended_at"])
    _bump_pricing_version(tenant)
    details = {**_prices(override), "ended_at": ended_at.isoformat()}
    record(tenant, actor, Action.PRICE_ENDED, _label(override), details)
    return override
