from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F

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
    return override


@transaction.atomic
def delete_price_override(tenant: Tenant, override_id: int) -> None:
    PriceOverride.objects.for_tenant(tenant).filter(pk=override_id).delete()
    _bump_pricing_version(tenant)


def _bump_pricing_version(tenant: Tenant) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(pricing_version=F("pricing_version") + 1)
    tenant.refresh_from_db(fields=["pricing_version"])
    keycache.clear()  # cached keys carry their tenant's pricing version


class PriceError(ValueError):
    """A price change the rules refuse; the message names the field."""


@transaction.atomic
def end_price_override(tenant: Tenant, override_id: int, ended_at: datetime) -> PriceOverride:
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
    return override
