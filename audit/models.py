"""The audit log: who did what and when, append-only.

Append-only twice over: `save()` refuses to update a stored entry and `delete()` refuses
outright, and a PostgreSQL trigger (migration 0001) refuses UPDATE and DELETE of the table
from any client, even raw SQL. The one exception is deleting a tenant: the database removes
its entries with it (ON DELETE CASCADE), since a tenant's log belongs to that tenant.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    API_KEY_CREATED = "api_key.created", "API key created"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    PRICE_SET = "price.set", "Price set"
    PRICE_ENDED = "price.ended", "Price ended"
    PRICE_DELETED = "price.deleted", "Price deleted"
    REPRICE_REQUESTED = "price.repriced", "Re-price applied"
    MODEL_FAMILY_SET = "model_family.set", "Model family rule set"
    MODEL_FAMILY_DELETED = "model_family.deleted", "Model family rule deleted"
    BUDGET_CREATED = "budget.created", "Budget created"
    BUDGET_CHANGED = "budget.changed", "Budget changed"
    BUDGET_DELETED = "budget.deleted", "Budget deleted"
    CHANNEL_CREATED = "channel.created", "Channel created"
    CHANNEL_DELETED = "channel.deleted", "Channel deleted"
    MEMBER_ADDED = "member.added", "Member added"
    MEMBER_INVITED = "member.invited", "Member invited"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Member role changed"
    MEMBER_REMOVED = "member.removed", "Member removed"
    INVOICE_GENERATED = "invoice.generated", "Invoices generated"
    INVOICE_FINALIZED = "invoice.finalized", "Invoice finalized"
    ANOMALY_ACKNOWLEDGED = "anomaly.acknowledged", "Anomaly acknowledged"
    LOGIN_LOCKED_OUT = "login.locked_out", "Sign-in locked out"
    LOGIN_UNLOCKED = "login.unlocked", "Sign-in unlocked"
    TAG_DIMENSIONS_SET = "tag_dimensions.set", "Tag dimensions set"


class AppendOnlyError(RuntimeError):
    """An audit entry was about to be changed or deleted."""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit entries are never changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries are never deleted")


class AuditEntryManager(models.Manager["AuditEntry"]):
    """No unscoped reads: every query names its tenant (as the tenants' scoped manager)."""

    def get_queryset(self) -> AuditEntryQuerySet:
        raise RuntimeError("AuditEntry is tenant-owned: use .for_tenant(tenant)")

    def for_tenant(self, tenant: models.Model | int) -> AuditEntryQuerySet:
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        if tenant_id is None:
            raise RuntimeError("for_tenant() needs a saved tenant")
        return AuditEntryQuerySet(self.model, using=self._db).filter(tenant_id=tenant_id)


class AuditEntry(models.Model):
    # DO_NOTHING in Django: the database itself cascades a tenant's deletion (migration 0001),
    # so Django never issues the DELETE the trigger refuses.
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.DO_NOTHING, related_name="+", db_index=False
    )
    at = models.DateTimeField(auto_now_add=True)
    # No database constraint: deleting a user must not rewrite (or be blocked by) the log; the
    # label below keeps who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=40, choices=Action.choices)
    target = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEntryManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "-at", "-id"], name="audit_tenant_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("audit entries are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries are never deleted")
