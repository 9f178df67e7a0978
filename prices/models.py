"""A re-price of stored events, as it was asked for and as it ran: the record finance reads."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

from core.money import money_field
from tenants.scoping import TenantOwned


class RepriceStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE = (RepriceStatus.QUEUED, RepriceStatus.RUNNING)


class RepriceRun(TenantOwned):
    """Who re-priced which range when, and the totals before and after.

    `since` is the first UTC day re-priced; the range runs to the newest event. The totals
    are those of every retained event in the range, stored cost before and new cost after.
    """

    since = models.DateField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField()
    # The prices the preview was computed with: a run refuses to start on other prices.
    pricing_version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=RepriceStatus.choices, default=RepriceStatus.QUEUED
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    events_total = models.BigIntegerField(default=0)
    events_done = models.BigIntegerField(default=0)
    events_changed = models.BigIntegerField(default=0)
    old_total_usd = money_field(null=True, blank=True)
    new_total_usd = money_field(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta(TenantOwned.Meta):
        ordering = ["-requested_at"]
        constraints = [
            # One re-price at a time per tenant: two would re-price the same events twice over.
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(status__in=["queued", "running"]),
                name="reprice_one_active_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"re-price from {self.since} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def difference(self) -> Decimal | None:
        if self.old_total_usd is None or self.new_total_usd is None:
            return None
        return self.new_total_usd - self.old_total_usd
