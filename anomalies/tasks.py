from __future__ import annotations

from celery import shared_task

from anomalies import services
from tenants.models import Tenant


@shared_task(acks_late=True, reject_on_worker_lost=True)
def detect_anomalies(tenant_id: int) -> int:
    return services.detect_latest(tenant_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def detect_all_anomalies() -> int:
    """Hourly beat: every tenant's last complete hour, also when no new usage arrived."""
    return sum(services.detect_latest(pk) for pk in Tenant.objects.values_list("pk", flat=True))
