from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from audit.models import Action
from audit.services import Actor, record
from pricing.models import ModelFamilyRule, PriceOverride
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


class FamilyRuleError(ValueError):
    """A model family rule the rules refuse; the message names the field."""


MATCH_MAX, FAMILY_MAX = 128, 64


def _clean_rule(match: str, family: str) -> tuple[str, str]:
    match, family = match.strip().lower(), " ".join(family.split())
    if not match or len(match) > MATCH_MAX or any(c.isspace() for c in match):
        raise FamilyRuleError(
            f"match: a model id prefix or glob of 1-{MATCH_MAX} characters, no spaces"
        )
    if not family or len(family) > FAMILY_MAX:
        raise FamilyRuleError(f"family: a name of 1-{FAMILY_MAX} characters")
    return match, family


@transaction.atomic
def set_family_rule(
    tenant: Tenant, match: str, family: str, *, actor: Actor = None
) -> ModelFamilyRule:
    """The tenant's models whose canonical id `match` names (a glob, or a prefix) are of
    `family` from now on, on every page and in the API: families are worked out when read,
    so history needs no re-roll. Setting a pattern again changes its family."""
    match, family = _clean_rule(match, family)
    rule, _ = ModelFamilyRule.objects.for_tenant(tenant).update_or_create(
        match=match, defaults={"tenant": tenant, "family": family}
    )
    record(tenant, actor, Action.MODEL_FAMILY_SET, match, {"family": family})
    return rule


@transaction.atomic
def delete_family_rule(tenant: Tenant, match: str, *, actor: Actor = None) -> bool:
    """Remove the tenant's rule for `match`; False when it has none."""
    rule = ModelFamilyRule.objects.for_tenant(tenant).filter(match=match.strip().lower()).first()
    if rule is None:
        return False
    rule.delete()
    record(tenant, actor, Action.MODEL_FAMILY_DELETED, rule.match, {"family": rule.family})
    return True
