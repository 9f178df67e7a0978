"""A re-price of stored events: its preview, and the run as it was asked for and as it ran."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models

from core.money import decimal_text, money_field
from rollups.repricing import Cell
from tenants.scoping import TenantOwned


class RepriceStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE = (RepriceStatus.QUEUED, RepriceStatus.RUNNING)
COMMAND_LINE = "command line"  # who asked, for a re-price run by `manage.py rollup --since`


class RepricePreview(TenantOwned):
    """What re-pricing from `since` would change, computed by the worker (a page must not
    price 300k events in its request): per month and team, the cost stored and with the
    prices of `pricing_version`. Nothing is written to events or rollups."""

    since = models.DateField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField()
    # The prices it is computed with: an apply on other prices is refused.
    pricing_version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=RepriceStatus.choices, default=RepriceStatus.QUEUED
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    events_total = models.BigIntegerField(default=0)
    events_changed = models.BigIntegerField(default=0)
    old_total_usd = money_field(null=True, blank=True)
    new_total_usd = money_field(null=True, blank=True)
    # Per month and team: {"month", "team_pk", "events", "changed", "before", "after"}, the
    # amounts as decimal text (exact; JSON numbers would be floats).
    cells = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta(TenantOwned.Meta):
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"re-price preview from {self.since} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def rows(self) -> list[Cell]:
        return [_cell(c) for c in self.cells]

    @property
    def difference(self) -> Decimal | None:
        if self.old_total_usd is None or self.new_total_usd is None:
            return None
        return self.new_total_usd - self.old_total_usd


def cell_data(cell: Cell) -> dict[str, Any]:
    return {
        "month": cell.month.isoformat(),
        "team_pk": cell.team_pk,
        "events": cell.events,
        "changed": cell.changed,
        "before": decimal_text(cell.before),
        "after": decimal_text(cell.after),
    }


def _cell(data: dict[str, Any]) -> Cell:
    return Cell(
        date.fromisoformat(data["month"]),
        int(data["team_pk"]),
        int(data["events"]),
        int(data["changed"]),
        Decimal(data["before"]),
        Decimal(data["after"]),
    )


class RepriceRun(TenantOwned):
    """Who re-priced which range when, and the totals before and after.

    `since` is the first UTC day re-priced; the range runs to the newest event. The totals
    are those of every retained event in the range, stored cost before and new cost after.
    """

    since = models.DateField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who asked when nobody signed in did: "command line" (`rollup --since`).
    requested_via = models.CharField(max_length=32, blank=True, default="")
    requested_at = models.DateTimeField()
    # The preview it applies (none for the command line): the page shows both totals.
    preview = models.ForeignKey(
        RepricePreview, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
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

    @property
    def who(self) -> str:
        if self.requested_by is not None:
            return str(self.requested_by.get_username())
        return self.requested_via or "—"

    @property
    def differs_from_preview(self) -> bool:
        """Applied totals other than the preview's: events arrived or changed in between."""
        preview = self.preview
        return (
            preview is not None
            and self.status == RepriceStatus.DONE
            and (
                (self.old_total_usd, self.new_total_usd, self.events_total)
                != (preview.old_total_usd, preview.new_total_usd, preview.events_total)
            )
        )
