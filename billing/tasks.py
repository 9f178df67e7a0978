"""Celery tasks: they take ids and call services."""

from __future__ import annotations

import logging

from celery import shared_task

from billing import services
from tenants.models import Tenant

log = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def close_finished_months() -> int:
    """Beat, hourly: draft the invoices of every tenant whose month just ended in its zone.

    Hourly because each tenant's month ends at a different UTC hour; idempotent, so running
    it again (or twice at once) generates nothing new.
    """
    closed = 0
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        try:
            closed += len(services.close_due_months(tenant_id))
        except Exception:  # one tenant's failure must not hold up every other tenant's bills
            log.exception("could not close the billing month of tenant %s", tenant_id)
    return closed
