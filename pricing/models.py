from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, overload

from django.db import models

from core.money import DecimalIn
from tenants.scoping import TenantOwned


# Overloaded on `null` so the model attributes stay typed as they would be with a direct
# models.DecimalField(...) call: Decimal, or Decimal | None for a nullable field.
@overload
def price_field(
    *, null: Literal[True], **kwargs: Any
) -> models.DecimalField[DecimalIn | None, Decimal | None]: ...
@overload
def price_field(
    *, null: Literal[False] = ..., **kwargs: Any
) -> models.DecimalField[DecimalIn, Decimal]: ...
def price_field(**kwargs: Any) -> models.DecimalField[Any, Any]:
    """A price in USD per million tokens, with 10 decimals."""
    return models.DecimalField(max_digits=20, decimal_places=10, **kwargs)


class PriceOverride(TenantOwned):
    """A tenant's own price for one provider/model (negotiated discounts, private deployments).

    Prices are USD per million tokens. Empty cache prices fall back to the input price.
    An override applies to events at or after `effective_from`; the newest one wins. An
    ended one (`ended_at`) stops there: from then on the catalog prices the model again,
    until a later override starts.
    """

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    effective_from = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    input_per_mtok = price_field()
    output_per_mtok = price_field()
    cache_read_per_mtok = price_field(null=True, blank=True)
    cache_write_per_mtok = price_field(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "model", "effective_from"],
                name="price_override_unique_start",
            )
        ]
        ordering = ["provider", "model", "-effective_from"]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.effective_from:%Y-%m-%d}"


class ModelFamilyRule(TenantOwned):
    """A tenant's own model family for the canonical model ids `match` names (a glob, or a
    prefix); tried before the built-in rules, the longest pattern first (`pricing.families`)."""

    match = models.CharField(max_length=128)
    family = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "match"], name="model_family_rule_unique")
        ]
        ordering = ["match"]

    def __str__(self) -> str:
        return f"{self.match} -> {self.family}"
