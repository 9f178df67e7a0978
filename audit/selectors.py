"""Reads of the audit log, always of one tenant, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import models

from audit.models import AuditEntry, AuditEntryQuerySet


@dataclass(frozen=True)
class Filters:
    action: str = ""
    actor: str = ""  # part of the actor's label, any case
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def entries(tenant: models.Model, filters: Filters) -> AuditEntryQuerySet:
    rows = AuditEntry.objects.for_tenant(tenant.pk)
    if filters.action:
        rows = rows.filter(action=filters.action)
    if filters.actor:
        rows = rows.filter(actor_label__icontains=filters.actor)
    if filters.since:
        rows = rows.filter(at__gte=filters.since)
    if filters.until:
        rows = rows.filter(at__lt=filters.until)
    return rows.order_by("-at", "-id")
