"""Reads of rollup health, for operators: failing tenants, refused and quarantined batches.

Where `/readyz`, `/metrics` and `manage.py rollup_quarantine` look. Quarantined batches are
rows (`PendingBatch.quarantined_at`); a tenant's failing runs are marks in the shared cache
(Redis in production), written by `rollups.services.roll_up_isolated`: a run's failure is not
data, and a mark expires if no run comes to clear or renew it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Count

from ingest.models import PendingBatch, UsageEvent
from tenants.models import Tenant

# A failing tenant is renewed by every sweep (30 s); a mark no run renews fades after this.
FAILING_MARK_SECONDS = 600


def failing_key(tenant_id: int) -> str:
    return f"costboard:rollups:failing:{tenant_id}"


def failures_key(tenant_id: int) -> str:
    return f"costboard:rollups:failures:{tenant_id}"


@dataclass(frozen=True)
class QuarantinedBatch:
    pk: int
    tenant: str
    created_at: datetime
    events: int
    failures: int
    last_error: str
    failed_at: datetime | None
    quarantined_at: datetime | None


def _get_many(keys: dict[str, int]) -> dict[int, Any]:
    """Cache values by tenant id; an unreachable cache reads as empty (never fails a probe)."""
    try:
        found = cache.get_many(list(keys))
    except Exception:
        return {}
    return {keys[key]: value for key, value in found.items()}


def _tenant_ids(tenant_id: int | None = None) -> list[int]:
    if tenant_id is not None:
        return [tenant_id]
    return list(Tenant.objects.values_list("pk", flat=True))


def failing_tenants() -> dict[int, str]:
    """Tenant id -> the error of its last rollup run, for tenants whose last run failed."""
    return _get_many({failing_key(pk): pk for pk in _tenant_ids()})


def failures_by_tenant(tenant_id: int | None = None) -> dict[int, int]:
    """Tenant id -> failed rollup runs and refused batch merges, counted since the cache
    began (a counter: it only goes up, and restarts from 0 if the cache is emptied); of one
    tenant when `tenant_id` is given, else of every tenant."""
    keys = {failures_key(pk): pk for pk in _tenant_ids(tenant_id)}
    return {pk: int(n) for pk, n in _get_many(keys).items()}


def quarantined_by_tenant(tenant_id: int | None = None) -> dict[int, int]:
    """Tenant id -> its quarantined batches (tenants with none left out); of one tenant when
    `tenant_id` is given, else of every tenant."""
    rows = (
        # Operator-wide: what /metrics and /readyz report across every tenant.
        PendingBatch.unscoped_all_tenants.all()
        if tenant_id is None
        else PendingBatch.objects.for_tenant(tenant_id)
    ).filter(quarantined_at__isnull=False)
    return dict(rows.values_list("tenant_id").annotate(n=Count("pk")).order_by())


def quarantined_batches(tenant: Tenant | None = None) -> list[QuarantinedBatch]:
    """The quarantined batches, oldest first, of one tenant or of every tenant."""
    rows = (
        PendingBatch.unscoped_all_tenants.all()
        if tenant is None
        else PendingBatch.objects.for_tenant(tenant)
    )
    batches = list(rows.filter(quarantined_at__isnull=False).order_by("pk"))
    slugs = dict(Tenant.objects.values_list("pk", "slug"))
    events = _events_per_batch([b.pk for b in batches])
    return [_quarantined(b, slugs, events.get(b.pk, 0)) for b in batches]


def _quarantined(b: PendingBatch, slugs: dict[int, str], events: int) -> QuarantinedBatch:
    tenant = slugs.get(b.tenant_id, str(b.tenant_id))
    return QuarantinedBatch(
        b.pk, tenant, b.created_at, events, b.failures, b.last_error, b.failed_at,
        b.quarantined_at,
    )  # fmt: skip


def _events_per_batch(batch_ids: list[int]) -> dict[int, int]:
    # By batch id alone: the batches were already chosen (for one tenant, or operator-wide),
    # and a batch id names one tenant's batch.
    rows = UsageEvent.unscoped_all_tenants.filter(batch_id__in=batch_ids)
    return dict(rows.values_list("batch_id").annotate(n=Count("pk")).order_by())


def problems() -> list[str]:
    """One line per tenant whose rollups need an operator, for /readyz."""
    slugs = dict(Tenant.objects.values_list("pk", "slug"))
    out = [
        f"rollups: tenant {slugs.get(pk, pk)}: last run failed: {error}"
        for pk, error in sorted(failing_tenants().items())
    ]
    out += [
        f"rollups: tenant {slugs.get(pk, pk)}: {n} batch(es) quarantined "
        "(manage.py rollup_quarantine list)"
        for pk, n in sorted(quarantined_by_tenant().items())
    ]
    return out
