"""Debounced per-tenant rollup scheduling: one task per tenant per few seconds, not per event."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from pipeline.debounce import scheduled_flag
from pipeline.tasks import roll_up_tenant

log = logging.getLogger(__name__)
# Per process: until when a tenant's scheduled rollup surely has not started yet, so a busy
# ingest process does not ask Redis on every request: at most half the debounce, and never
# past the run's start, so the run still starts after every event this shortcut skipped.
_recently: dict[int, float] = {}
OVERDUE_SKIP = 1.0  # seconds


def schedule_rollup(tenant_id: int) -> None:
    """Enqueue a rollup for the tenant unless one is already waiting.

    Called after the ingest transaction commits. If the broker or cache is down the events
    are still safe: the beat sweep rolls up whatever is pending.
    """
    delay = settings.ROLLUP_DEBOUNCE_SECONDS
    now = time.monotonic()
    if _recently.get(tenant_id, 0.0) > now:
        return  # a run that has not started yet will pick these events up too
    try:
        starts = time.time() + delay
        if cache.add(scheduled_flag(tenant_id), starts, timeout=delay + 60):
            roll_up_tenant.apply_async((tenant_id,), countdown=delay)
        else:
            # Another process scheduled the run; it may start well before `delay` is over.
            starts = float(cache.get(scheduled_flag(tenant_id)) or 0.0)
    except Exception:  # the request already succeeded; never turn that into an error
        log.warning("could not schedule a rollup for tenant %s", tenant_id, exc_info=True)
        return
    # Skip asking again while the scheduled run is sure not to have started (it starts no
    # sooner than `starts`): a run takes what is pending when it starts and does not wait
    # for more, so events committed after it began need a run of their own. A run that is
    # overdue (the worker is busy or down) is still asked about at most once a second: two
    # Redis calls per request would cost ingest more than the request itself.
    _recently[tenant_id] = now + min(delay / 2, max(OVERDUE_SKIP, starts - time.time()))
