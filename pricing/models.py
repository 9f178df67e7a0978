from __future__ import annotations

from django.db import models

from tenants.scoping import TenantOwned

PRICE_FIELD = {"max_digits": 20, "decimal_places": 10}


class PriceOverride(TenantOwned):
    """A tenant's own price for one provider/model (negotiated discounts, private deployments).

    Prices are USD per million tokens. Empty cache prices fall back to the input price.
    An override applies to events at or after `effective_from`; the newest one wins.
    """

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    effective_from = models.DateTimeField()
    input_per_mtok = models.DecimalField(**PRICE_FIELD)
    output_per_mtok = models.DecimalField(**PRICE_FIELD)
    cache_read_per_mtok = models.DecimalField(null=True, blank=True, **PRICE_FIELD)
    cache_write_per_mtok = models.DecimalField(null=True, blank=True, **PRICE_FIELD)
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
