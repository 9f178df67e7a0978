from __future__ import annotations

from celery import shared_task

from metrics.collector import refresh


@shared_task(acks_late=True, reject_on_worker_lost=True, expires=10)
def refresh_metrics() -> int:
    """Beat: re-render /metrics before the shared snapshot expires, so scrapes stay cheap."""
    return len(refresh(force=True))
