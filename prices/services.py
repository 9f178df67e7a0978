"""Re-price writes: ask for a preview and compute it (the worker), ask for a re-price
(recorded, queued for the worker) and run it, record one run from the command line, and
prune the previews nobody applied."""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from core.locks import try_xact_lock_pair, xact_lock_pair
from prices.models import ACTIVE, COMMAND_LINE, RepricePreview, RepriceRun, RepriceStatus, cell_data
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
# Held while a preview is asked for, per tenant: a double click finds the first one.
PREVIEW_LOCK_SPACE = 7_262_002
# A preview asked for again within this many seconds (same day, same prices) is the same one.
PREVIEW_REUSE_SECONDS = 600
# A preview nobody applied is kept this long after it was asked for (each holds a table of every
# month and team it would change); one a run applied stays with the run, whose page shows both.
PREVIEW_KEEP_DAYS = 30


class RepriceError(repricing.RepriceRefused):
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


Actor = AbstractBaseUser | AnonymousUser | None


def _user(actor: Actor) -> AbstractBaseUser | None:
    return actor if isinstance(actor, AbstractBaseUser) else None


def request_preview(
    tenant: Tenant, since: date, user: Actor = None, again: bool = False
) -> tuple[RepricePreview, bool]:
    """A preview of re-pricing from `since` with today's prices, to be computed by the worker;
    True when it is new (queue it). The same day asked for again on the same prices while it
    is computed, or shortly after, is the same preview: a double click costs one scan.
    `again`: a new one unless one is being computed (calls may have arrived since)."""
    check_since(since)
    with transaction.atomic():
        xact_lock_pair(
            PREVIEW_LOCK_SPACE, tenant.pk
        )  # until commit: two requests at once see each other
        tenant.refresh_from_db(fields=["pricing_version"])
        recent = timezone.now() - timedelta(seconds=PREVIEW_REUSE_SECONDS)
        same = RepricePreview.objects.for_tenant(tenant).filter(
            since=since, pricing_version=tenant.pricing_version, requested_at__gte=recent
        )
        reusable = [RepriceStatus.QUEUED, RepriceStatus.RUNNING]
        if not again:
            reusable.append(RepriceStatus.DONE)
        found = same.filter(status__in=reusable).order_by("-requested_at").first()
        if found is not None:
            return found, False
        preview = RepricePreview.objects.for_tenant(tenant).create(
            tenant=tenant,
            since=since,
            requested_by=_user(user),
            requested_at=timezone.now(),
            pricing_version=tenant.pricing_version,
        )
    return preview, True


def run_preview(tenant_id: int, preview_id: int) -> RepricePreview:
    """Compute a preview (the worker's job). One computed already is kept as it is (a task
    delivered twice); one whose worker died is computed again (it wrote nothing)."""
    preview = _take_preview(tenant_id, preview_id)
    if preview is None:
        return RepricePreview.objects.for_tenant(tenant_id).get(pk=preview_id)
    try:
        tenant = Tenant.objects.get(pk=tenant_id)
        result = repricing.preview(
            tenant, preview.since, _progress(preview_progress_key(preview.pk))
        )
        preview.pricing_version = result.pricing_version  # what it was computed with
        preview.cells = [cell_data(c) for c in result.rows]
        preview.events_total, preview.events_changed = result.events, result.changed
        preview.old_total_usd, preview.new_total_usd = result.before, result.after
        _finish(preview, RepriceStatus.DONE)
    except Exception as exc:
        log.exception("re-price preview %s of tenant %s failed", preview_id, tenant_id)
        _finish(preview, RepriceStatus.FAILED, error=_why(exc))
    return preview


def _take_preview(tenant_id: int, preview_id: int) -> RepricePreview | None:
    with transaction.atomic():
        preview = (
            RepricePreview.objects.for_tenant(tenant_id).select_for_update().get(pk=preview_id)
        )
        if not preview.active:
            return None
        preview.status = RepriceStatus.RUNNING
        preview.started_at = preview.started_at or timezone.now()
        preview.save(update_fields=["status", "started_at"])
        return preview


def not_queued(record: RepricePreview | RepriceRun, exc: Exception) -> None:
    """The worker's queue refused the task (broker down): the record says so, as a failure
    to try again, rather than waiting for ever."""
    log.error("re-price %s not queued: %s", record, error_text(exc))
    _finish(
        record, RepriceStatus.FAILED, error="the worker's queue could not be reached; try again"
    )


def request_reprice(
    tenant: Tenant,
    since: date,
    pricing_version: int,
    user: Actor = None,
    preview: RepricePreview | None = None,
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
                requested_by=_user(user),
                requested_at=timezone.now(),
                pricing_version=pricing_version,
                preview=preview,
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
            result = repricing.apply(tenant, run.since, _progress(progress_key(run.pk)))
            _record_result(run, result)  # with the apply: done exactly when applied
    except Exception as exc:
        log.exception("re-price %s of tenant %s failed", run_id, tenant_id)
        _finish(run, RepriceStatus.FAILED, error=_why(exc))
    return run


def _record_result(run: RepriceRun, result: repricing.Preview) -> None:
    run.events_total = run.events_done = result.events
    run.events_changed = result.changed
    run.old_total_usd, run.new_total_usd = result.before, result.after
    _finish(run, RepriceStatus.DONE)


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RepriceError) else error_text(exc)


def record_command_run(tenant: Tenant, since: date, work: repricing.Work) -> repricing.Preview:
    """Record a re-price run by `manage.py rollup --since` as the page's apply is recorded:
    running while `work` applies it (so no page re-price runs at the same time), then done
    with its totals, or failed with the error that ended it (raised again)."""
    check_since(since)
    tenant.refresh_from_db(fields=["pricing_version"])
    now = timezone.now()
    try:
        with transaction.atomic():
            run = RepriceRun.objects.for_tenant(tenant).create(
                tenant=tenant, since=since, requested_via=COMMAND_LINE, requested_at=now,
                started_at=now, status=RepriceStatus.RUNNING,
                pricing_version=tenant.pricing_version,
            )  # fmt: skip
            record(tenant, "manage.py", Action.REPRICE_REQUESTED, f"from {since}", {"run": run.pk})
    except IntegrityError:
        raise RepriceError("a re-price is already queued or running; wait for it") from None
    try:
        result = work()
    except BaseException as exc:  # interrupted too (Ctrl-C): never left "running"
        _finish(
            run,
            RepriceStatus.FAILED,
            error=_why(exc) if isinstance(exc, Exception) else "interrupted",
        )
        raise
    _record_result(run, result)
    return result


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
    return try_xact_lock_pair(RUN_LOCK_SPACE, run_id)


def _status(run: RepriceRun) -> str:
    return str(
        RepriceRun.objects.for_tenant(run.tenant_id).values_list("status", flat=True).get(pk=run.pk)
    )


def progress_key(run_id: int) -> str:
    return f"costboard-reprice-progress-{run_id}"


def preview_progress_key(preview_id: int) -> str:
    return f"costboard-reprice-preview-progress-{preview_id}"


def _progress(key: str) -> repricing.Progress:
    """Events priced so far, in the cache: the re-price is one transaction, so a row it
    updated would show nobody anything until the end. A cache outage hides the progress; it
    never fails the work."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY or done == total:
            last[0] = now
            try:
                cache.set(key, (done, total), timeout=PROGRESS_SECONDS)
            except Exception:
                log.warning("re-price progress %s not written: cache unavailable", key)

    return progress


def _progress_of(run: RepriceRun) -> repricing.Progress:
    return _progress(progress_key(run.pk))


def _finish(run: RepricePreview | RepriceRun, status: RepriceStatus, error: str = "") -> None:
    run.status, run.error, run.finished_at = status, error[:2000], timezone.now()
    run.save()


def prune_previews(tenant_id: int, now: datetime | None = None) -> int:
    """Delete the tenant's finished previews asked for over PREVIEW_KEEP_DAYS ago that no run
    applied; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=PREVIEW_KEEP_DAYS)
    old = RepricePreview.objects.for_tenant(tenant_id).filter(requested_at__lt=cutoff)
    deleted, _ = old.exclude(status__in=ACTIVE).filter(runs__isnull=True).delete()
    return deleted
