from __future__ import annotations

import random

from celery import shared_task
from django.conf import settings

from alerts.delivery import MAX_ATTEMPTS, attempt_delivery
from alerts.models import DeliveryStatus


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_ATTEMPTS - 1)
def deliver(self, tenant_id: int, delivery_id: int) -> bool:  # type: ignore[no-untyped-def]
    """Deliver one alert to one channel; back off 10 s, 20 s, 40 s... (jittered), then give up."""
    final = self.request.retries >= self.max_retries
    status = attempt_delivery(tenant_id, delivery_id, final=final)
    if status != DeliveryStatus.PENDING:
        return status == DeliveryStatus.SENT
    raise self.retry(countdown=_backoff(self.request.retries))


def _backoff(retries: int) -> float:
    """Exponential backoff with jitter, so retries of many deliveries do not arrive together."""
    base = settings.ALERT_RETRY_BASE_SECONDS
    return min(600.0, base * 2**retries) * random.uniform(0.8, 1.2)
