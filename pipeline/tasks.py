"""What happens after events are durable, top to bottom.

1. Ingest commits a tenant's events and sends `core.signals.events_stored`;
   `pipeline.receivers` schedules the tenant's rollup, debounced (`pipeline.scheduling`):
   one run per tenant every few seconds, not one per request.
2. `roll_up_tenant` folds every pending batch into the rollups (`rollups.services`).
   If that brought new events:
3. `evaluate_budgets`: budgets react within seconds of new spend;
4. `detect_anomalies`: late events can complete the last hour;
5. `refresh_metrics`: the shared /metrics snapshot shows the new totals (at most one
   re-render queued per second, however many tenants roll up).

Steps 3-5 are tasks of their own, so a failure in one is retried or reported alone and never
undoes the rollup. Beat's sweeps (`costboard.celery`) catch up whatever a lost message or a
down broker left behind. The task keeps its first name, `rollups.tasks.roll_up_tenant`, which
messages already queued use.
"""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from anomalies.tasks import detect_anomalies
from budgets.tasks import evaluate_budgets
from metrics.tasks import refresh_metrics
from pipeline.debounce import clear_schedule
from rollups import services as rollups

METRICS_REFRESH_FLAG = "costboard:pipeline:metrics-refresh-queued"


@shared_task(name="rollups.tasks.roll_up_tenant", acks_late=True, reject_on_worker_lost=True)
def roll_up_tenant(tenant_id: int) -> int:
    clear_schedule(tenant_id)  # events arriving during this run schedule the next one
    # Isolated like beat's sweep: a refused batch is left out (and quarantined in the end),
    # and a failed run is logged, counted and retried by the sweep, not raised at Celery.
    events = rollups.roll_up_isolated(tenant_id)
    if events:
        evaluate_budgets.delay(tenant_id)
        detect_anomalies.delay(tenant_id)
        _refresh_metrics_soon()
    return events


def _refresh_metrics_soon() -> None:
    # One re-render of every tenant's series serves all the rollups of the same second.
    if cache.add(METRICS_REFRESH_FLAG, 1, timeout=1):
        refresh_metrics.delay()
