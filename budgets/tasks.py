from __future__ import annotations

from celery import shared_task

from budgets import services
from budgets.models import Budget


@shared_task(acks_late=True, reject_on_worker_lost=True)
def evaluate_budgets(tenant_id: int) -> int:
    return services.evaluate_tenant(tenant_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def evaluate_all_budgets() -> int:
    """Beat: periods roll over and forecasts move even when no usage arrives."""
    # Operator-wide sweep over every tenant that has a budget.
    tenant_ids = Budget.unscoped_all_tenants.values_list("tenant_id", flat=True).distinct()
    return sum(services.evaluate_tenant(tenant_id) for tenant_id in tenant_ids)
