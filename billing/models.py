"""Chargeback settings, invoices and their lines.

An invoice is one team's bill for one month (in the tenant's time zone). Its lines are
stored, and a finalized invoice and its lines are never written again: the CSV is generated
from these stored rows only, so it is byte-identical whenever it is downloaded.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from core.counts import TokenSumField
from core.money import money_field
from core.teams import NO_TEAM
from rollups.models import TAG_KEY_LENGTH, TAG_VALUE_LENGTH
from tenants.scoping import TenantOwned

# Typed as Any so the field stubs accept it as keyword arguments.
CENTS: dict[str, Any] = {"max_digits": 20, "decimal_places": 2}


class BillingSettings(TenantOwned):
    """Per-tenant chargeback settings, created on first use (one row per tenant)."""

    # Spread spend that no team owns over the teams, in proportion to their own spend.
    allocate_unallocated = models.BooleanField(default=False)
    # The last month whose drafts the beat task generated when it closed (idempotency mark).
    last_closed_month = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="billing_settings_one_per_tenant")
        ]


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    FINALIZED = "finalized", "Finalized"


class Invoice(TenantOwned):
    month = models.DateField()  # first day of the month, in `timezone`
    team_pk = models.BigIntegerField(default=NO_TEAM)  # NO_TEAM: the unallocated invoice
    number = models.CharField(max_length=160)
    # Snapshots taken at generation, so renaming a team or changing the tenant's time zone
    # never changes an invoice that was already sent.
    team_slug = models.CharField(max_length=64)
    team_name = models.CharField(max_length=200)
    cost_center = models.CharField(max_length=64, blank=True, default="")
    timezone = models.CharField(max_length=64, default="UTC")
    allocates_unallocated = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT
    )
    total_usd = models.DecimalField(default=0, **CENTS)  # the sum of the lines' amounts
    line_count = models.PositiveIntegerField(default=0)
    generated_at = models.DateTimeField()
    finalized_at = models.DateTimeField(null=True, blank=True)
    finalized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    csv_sha256 = models.CharField(max_length=64, blank=True, default="")  # set when finalized

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "month", "team_pk"], name="invoice_one_per_team_month"
            )
        ]
        indexes = [models.Index(fields=["tenant", "month"], name="invoice_tenant_month")]
        ordering = ["-month", "team_slug"]

    def __str__(self) -> str:
        return self.number

    @property
    def is_draft(self) -> bool:
        return self.status == InvoiceStatus.DRAFT


class LineType(models.TextChoices):
    USAGE = "usage", "Usage"
    ALLOCATION = "allocation", "Share of unallocated spend"
    ADJUSTMENT = "adjustment", "Late usage of an earlier month"
    ALLOCATION_ADJUSTMENT = "allocation_adjustment", "Late change to an earlier allocation"


class InvoiceLine(TenantOwned):
    """One team/provider/model/feature line. Counts and cost may be negative on adjustments."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    line_type = models.CharField(max_length=24, choices=LineType.choices)
    usage_month = models.DateField()  # the month the usage belongs to (earlier on adjustments)
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    feature = models.CharField(max_length=128)
    requests = models.BigIntegerField(default=0)
    input_tokens = TokenSumField(default=0)
    output_tokens = TokenSumField(default=0)
    cache_read_tokens = TokenSumField(default=0)
    cache_write_tokens = TokenSumField(default=0)
    # Calls with no known price, counted at $0: shown so that nobody mistakes them for free.
    unpriced_requests = models.BigIntegerField(default=0)
    cost_usd = money_field(default=0)  # exact (12 decimals, like the rollups), before rounding
    amount_usd = models.DecimalField(default=0, **CENTS)  # what is billed, in cents

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position")
        ]
        indexes = [models.Index(fields=["tenant", "usage_month"], name="invoice_line_usage_month")]
        ordering = ["invoice", "position"]


class InvoiceLineTag(TenantOwned):
    """One line's amount for one value of one of the tenant's chosen tag keys.

    Written with the line when its invoice is generated, so a finalized invoice keeps the
    breakdown it was sent with, whatever keys the tenant chooses later. For each key, the
    amounts of a line add up to the line's `amount_usd` exactly (largest remainder, cents).
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="+")
    line = models.ForeignKey(InvoiceLine, on_delete=models.CASCADE, related_name="+")
    key_position = models.PositiveSmallIntegerField()  # the key's place in the tenant's choice
    tag_key = models.CharField(max_length=TAG_KEY_LENGTH)
    tag_value = models.CharField(
        max_length=TAG_VALUE_LENGTH
    )  # as shown: "(none)", "(other)" or the value
    amount_usd = models.DecimalField(default=0, **CENTS)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["line", "tag_key", "tag_value"], name="invoice_line_tag_unique"
            )
        ]
        indexes = [models.Index(fields=["tenant", "invoice"], name="invoice_line_tag_invoice")]
        ordering = ["line", "key_position", "tag_value"]
