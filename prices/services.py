"""Re-price writes: ask for a re-price (recorded, queued for the worker) and run it."""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from prices.models import RepriceRun, RepriceStatus
from rollups import repricing
from rollups.services import error_text
from tenants.models import Tenant

log = logging.getLogger(__name__)
# Progress is written at most this often (seconds), and kept this long after its last write.
PROGRESS_EVERY = 0.5
PROGRESS_SECONDS = 3600
# The advisory lock a run holds while it applies: (this space, run id). Two-int keys never
# meet the rollups' one-bigint tenant locks.
RUN_LOCK_SPACE = 7_262_001


class RepriceError(Exception):
    """A re-price the rules refuse; the message says why, for people."""


def oldest_day() -> date:
    """The first day whose raw events are still kept: nothing before it can be re-priced."""
    return timezone.now().date() - timedelta(days=settings.RAW_EVENT_RETENTION_DAYS)


def check_since(since: date) -> None:
    if since < oldest_day():
        raise RepriceError(
            f"since: {since} is before the raw-event retention ({oldest_day()}); those days "
            "only exist as rollups and cannot be re-priced"
        )
    if since > timezone.now().date():
        raise RepriceError(f"since: {since} is in the future")


def request_reprice(
    tenant: Tenant,
    since: date,
    pricing_version: int,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> RepriceRun:
    """Record a re-price from `since` and queue it; `pricing_version`: the prices the preview
    showed. Refused if the prices changed since (preview again) or another re-price runs."""
    check_since(since)
    tenant.refresh_from_db(fields=["pricing_version"])
    if tenant.pricing_version != pricing_version:
        raise RepriceError("the prices changed since this preview; preview again, then apply")
    try:
        with transaction.atomic():
            run = RepriceRun.objects.for_tenant(tenant).create(
                tenant=tenant,
                since=since,
                requested_by=user if isinstance(user, AbstractBaseUser) else None,
                requested_at=timezone.now(),
                pricing_version=pricing_version,
            )
            record(
                tenant, user, Action.REPRICE_REQUESTED, f"from {since.isoformat()}", {"run": run.pk}
            )
    except IntegrityError:
        raise RepriceError("a re-price is already queued or running; wait for it") from None
    return run


def run_reprice(tenant_id: int, run_id: int) -> RepriceRun:
    """Apply a queued re-price (the worker's job): events, then rollups, then the record.

    A finished run is never run again, so a task delivered twice does nothing the second
    time; a run whose worker died is run again when its task comes back; a run that fails is
    recorded with its error, and asking again finishes the job (re-pricing is idempotent). A
    delivery that arrives while another one applies the run leaves it to that one."""
    run = _take(tenant_id, run_id)
    if run is None:
        return RepriceRun.objects.for_tenant(tenant_id).get(pk=run_id)
    tenant = Tenant.objects.get(pk=tenant_id)
    try:
        with transaction.atomic():
            # Delivered again while its first delivery still runs (a broker redelivers an
            # unacknowledged task after its visibility timeout), or just finished by it:
            # that delivery applies and records it, this one does nothing.
            if not _lock_run(run.pk) or _status(run) != RepriceStatus.RUNNING:
                log.warning("re-price %s of tenant %s is run by another worker", run_id, tenant_id)
                return run
            if tenant.pricing_version != run.pricing_version:
                raise RepriceError(
                    "the prices changed after the preview; preview again, then apply"
                )
            result = repricing.apply(tenant, run.since, _progress_of(run))
            run.events_total = run.events_done = result.events
            run.events_changed = result.changed
            run.old_total_usd, run.new_total_usd = result.before, result.after
            _finish(run, RepriceStatus.DONE)  # with the apply: done exactly when applied
    except Exception as exc:
        log.exception("re-price %s of tenant %s failed", run_id, tenant_id)
        _finish(
            run,
            RepriceStatus.FAILED,
            error=str(exc) if isinstance(exc, RepriceError) else error_text(exc),
        )
    return run


def _take(tenant_id: int, run_id: int) -> RepriceRun | None:
    with transaction.atomic():
        run = RepriceRun.objects.for_tenant(tenant_id).select_for_update().get(pk=run_id)
        # Running already: its worker died and the task came back (acks_late). The apply is
        # one transaction, so the dead run left nothing: run it again.
        if run.status not in (RepriceStatus.QUEUED, RepriceStatus.RUNNING):
            return None
        # A run taken again keeps its first start: the record says when it began.
        run.status, run.started_at = RepriceStatus.RUNNING, run.started_at or timezone.now()
        run.save(update_fields=["status", "started_at"])
        return run


def _lock_run(run_id: int) -> bool:
    """This run's lock, until the transaction ends; False when another worker holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [RUN_LOCK_SPACE, run_id % 2**31])
        row = cursor.fetchone()
    return bool(row and row[0])


def _status(run: RepriceRun) -> str:
    return str(
        RepriceRun.objects.for_tenant(run.tenant_id).values_list("status", flat=True).get(pk=run.pk)
    )


def progress_key(run_id: int) -> str:
    return f"costboard-reprice-progress-{run_id}"


def _progress_of(run: RepriceRun) -> repricing.Progress:
    """Events priced so far, in the cache: the re-price is one transaction, so a row it
    updated would show nobody anything until the end."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY or done == total:
            last[0] = now
            cache.set(progress_key(run.pk), (done, total), timeout=PROGRESS_SECONDS)

    return progress


def _finish(run: RepriceRun, status: RepriceStatus, error: str = "") -> None:
    run.status, run.error, run.finished_at = status, error[:2000], timezone.now()
    run.save()
