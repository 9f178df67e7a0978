"""Rollup writes: fold pending ingest batches into the rollup tables, exactly once.

Ingest writes each request's events together with a `PendingBatch` row. `roll_up_pending`
reads the events of some pending batches, adds their sums to the rollups and deletes those
batches, all in one transaction. A crash rolls all of it back; a rerun finds only batches
not yet folded in; an event that arrives hours late just brings its own batch. There is no
id watermark to overtake, because each batch is consumed by deleting its own row.

A batch the database refuses to merge (a sum its columns cannot hold, say) never holds up the
others: the failed merge is bisected in savepoints until only the refused batches are left
out, the rest are merged, and a batch refused `MAX_ATTEMPTS` times is quarantined (kept, with
its error, out of every merge) for an operator to retry or drop.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.db.models import Max, Min
from django.utils import timezone

from core.locks import xact_lock
from ingest import partitions
from ingest.models import PendingBatch, UsageEvent
from rollups import health, sql, tag_sql, windows
from rollups.models import (
    ConsumerDailyRollup,
    DailyRollup,
    DailySlice,
    HourlyRollup,
    HourlySlice,
    LifetimeRollup,
)
from rollups.sql import MEASURES as MEASURES  # the measure names, where readers import them
from tenants.models import Tenant

# Batches per transaction. A merge's cost is mostly one upsert per consumer it saw, whether
# it holds 10k events or 100k, so a debounced run takes everything pending at once: 2,000
# requests of 100 events is 25 s of ingest at 8k events/s.
MAX_BATCHES_PER_RUN = 2000
# Merges of one batch the database may refuse before the batch is quarantined.
MAX_ATTEMPTS = 3
# SQLSTATE classes of errors that are not a batch's fault (connection, deadlock or
# serialization, resources, cancel or shutdown, system): the run fails and is retried as a
# whole; no batch is blamed.
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
Row = dict[str, Any]
log = logging.getLogger(__name__)


def rollup_lock_key(tenant_id: int) -> int:
    """The advisory lock key of a tenant's rollup writers (as pg_locks shows it in objid)."""
    return zlib.crc32(f"costboard-rollup-{tenant_id}".encode())


def lock_tenant(tenant_id: int) -> None:
    """Serialise rollup writers of one tenant (a transaction-scoped advisory lock)."""
    xact_lock(rollup_lock_key(tenant_id))


def roll_up_pending(tenant_id: int, max_batches: int = MAX_BATCHES_PER_RUN) -> int:
    """Fold up to `max_batches` pending batches of a tenant into the rollups; returns events."""
    return _roll_up(tenant_id, max_batches, set()).events


class RunResult:
    """What one transaction of a rollup run did."""

    __slots__ = ("batches", "events", "refused")

    def __init__(self, batches: int, events: int, refused: dict[int, str]) -> None:
        self.batches = batches  # batches taken (merged or refused)
        self.events = events  # events the merged batches held
        self.refused = refused  # batch id -> the database's error, for batches left pending


def _roll_up(
    tenant_id: int, max_batches: int, skip: set[int], newest: int | None = None
) -> RunResult:
    """Merge up to `max_batches` mergeable pending batches (not quarantined, not in `skip`,
    none numbered after `newest` if given).

    Batches the database refuses are left pending with one more failure recorded (and
    quarantined at `MAX_ATTEMPTS`); every other batch is merged and deleted. A batch of only
    rejected events holds no events but is merged (deleted) like the others.
    """
    with transaction.atomic():
        lock_tenant(tenant_id)
        pending = _mergeable(tenant_id).exclude(pk__in=skip).select_for_update(skip_locked=True)
        if newest is not None:
            pending = pending.filter(pk__lte=newest)
        batches = list(
            pending.order_by("pk").values("pk", "created_at", "offered", "rejected")[:max_batches]
        )
        if not batches:
            return RunResult(0, 0, {})
        windows.ensure_windows(tenant_id, timezone.now())
        stored, refused = _merge_isolating([b["pk"] for b in batches], tenant_id)
        merged = [b for b in batches if b["pk"] not in refused]
        count = _count_ingest(tenant_id, merged, stored) if merged else 0
        PendingBatch.objects.for_tenant(tenant_id).filter(pk__in=[b["pk"] for b in merged]).delete()
        _record_failures(tenant_id, refused)
    return RunResult(len(batches), count, refused)


def _mergeable(tenant_id: int) -> Any:  # a QuerySet of PendingBatch
    """The tenant's pending batches that merges take: all but the quarantined."""
    return PendingBatch.objects.for_tenant(tenant_id).filter(quarantined_at__isnull=True)


def is_transient(exc: BaseException) -> bool:
    """Whether a database error says nothing about the data (a lost connection, a deadlock)."""
    state = getattr(exc.__cause__, "sqlstate", None) or ""
    return state[:2] in TRANSIENT_SQLSTATE_CLASSES


def _merge_isolating(batch_ids: list[int], tenant_id: int) -> tuple[dict[int, int], dict[int, str]]:
    """Merge these batches, leaving out those the database refuses: (events per merged batch,
    error per refused batch).

    One merge of all of them, in a savepoint; if the database refuses it, each half is tried
    the same way, down to single batches, so k bad batches among n cost about 2k·log2(n)
    merges and every good batch is merged. Merges are tried in batch order and each sees the
    sums the earlier ones added, so two batches that only overflow together merge the first
    and refuse the second. Transient errors (`is_transient`) are raised, not blamed on a batch.
    """
    stored: dict[int, int] = {}
    refused: dict[int, str] = {}
    for ids, outcome in _bisected(batch_ids, tenant_id):
        if isinstance(outcome, str):
            refused[ids[0]] = outcome
        else:
            stored.update(outcome)
    return stored, refused


def _bisected(
    batch_ids: list[int], tenant_id: int
) -> Iterator[tuple[list[int], dict[int, int] | str]]:
    """(batches, events per batch) for each merged part; ([batch], error) for each refused."""
    try:
        with transaction.atomic():  # a savepoint: a refused merge leaves nothing behind
            stored = sql.add_batches(tenant_id, batch_ids)
            tag_sql.add_batches(tenant_id, batch_ids)
    except DatabaseError as exc:
        if is_transient(exc):
            raise
        if len(batch_ids) == 1:
            yield batch_ids, error_text(exc)
            return
        half = len(batch_ids) // 2
        yield from _bisected(batch_ids[:half], tenant_id)
        yield from _bisected(batch_ids[half:], tenant_id)
        return
    yield batch_ids, stored


def error_text(exc: BaseException) -> str:
    """An error as operators read it: its class and first lines, bounded."""
    return f"{exc.__class__.__name__}: {' '.join(str(exc).split())}"[:1000]


def _record_failures(tenant_id: int, refused: dict[int, str]) -> None:
    """One more failure on each refused batch; quarantine those at `MAX_ATTEMPTS`."""
    now = timezone.now()
    for batch in PendingBatch.objects.for_tenant(tenant_id).filter(pk__in=refused):
        batch.failures += 1
        batch.last_error, batch.failed_at = refused[batch.pk], now
        if batch.failures >= MAX_ATTEMPTS:
            batch.quarantined_at = now
        batch.save(update_fields=["failures", "last_error", "failed_at", "quarantined_at"])
        log.warning(
            "rollup of tenant %s: batch %s refused (%s of %s attempts%s): %s",
            tenant_id, batch.pk, batch.failures, MAX_ATTEMPTS,
            ", quarantined" if batch.quarantined_at else "", batch.last_error,
        )  # fmt: skip


def _count_ingest(tenant_id: int, batches: list[Row], stored: dict[int, int]) -> int:
    """Accepted, duplicate and rejected events per day of arrival; returns the accepted."""
    days: dict[date, Row] = {}
    for batch in batches:
        day = batch["created_at"].astimezone(UTC).date()
        accepted = stored.get(batch["pk"], 0)
        row = days.setdefault(day, {"day": day, "accepted": 0, "duplicates": 0, "rejected": 0})
        row["accepted"] += accepted
        row["duplicates"] += batch["offered"] - accepted
        row["rejected"] += batch["rejected"]
    sql.add_ingest_counts(
        tenant_id,
        [(r["day"], r["accepted"], r["duplicates"], r["rejected"]) for r in days.values()],
    )
    return sum(stored.values())


def roll_up_all_pending(tenant_id: int) -> int:
    """Fold in every batch pending when the run starts; returns the events.

    One transaction, unless more than `MAX_BATCHES_PER_RUN` batches wait (then as many as
    it takes). It does not chase batches that arrive meanwhile: under steady ingest there
    always are some, and a run that looped until none were left made back-to-back merges of
    a fraction of a second's events each, every one touching nearly every active consumer,
    which defeated the debounce. Batches committed after the run began schedule the next
    run themselves (`rollups.scheduling`); beat's sweep is the safety net. A count of
    batches, not of events, ends it: batches whose events were all rejected are folded in
    like the others. A batch the database refuses is tried once per run (see `_roll_up`).
    """
    return _roll_up_all(tenant_id)[0]


def _roll_up_all(tenant_id: int) -> tuple[int, int]:
    """(events merged, batch merges refused) of one run over everything pending when it starts.

    Batches are numbered as they are stored, so the run takes none numbered after the newest
    it found: under ingest faster than the merges (seen at 14,000 events/s on 2 cores) a run
    that also took the batches arriving meanwhile never ended, until the worker's hard time
    limit killed it in the middle of a merge."""
    newest = _mergeable(tenant_id).aggregate(newest=Max("pk"))["newest"]
    total, refused = 0, set[int]()
    while newest is not None:
        result = _roll_up(tenant_id, MAX_BATCHES_PER_RUN, refused, newest)
        total += result.events
        refused |= result.refused.keys()
        if result.batches < MAX_BATCHES_PER_RUN:
            break
    return total, len(refused)


def roll_up_isolated(tenant_id: int) -> int:
    """`roll_up_all_pending`, but a failure stays this tenant's: never raises.

    A run that fails (a transient database error, a bug) is logged with its error, counted
    (`health.failures_by_tenant`) and marked failing (`health.failing_tenants`, named in
    /readyz) until a later run of the tenant succeeds; it merged nothing, and the next run
    (the pipeline's, or beat's sweep within 30 s) tries again. Refused batches count too.
    """
    try:
        events, refused = _roll_up_all(tenant_id)
    except Exception as exc:
        log.exception("rollup of tenant %s failed", tenant_id)
        _record_run(tenant_id, error_text(exc), failures=1)
        return 0
    _record_run(tenant_id, None, failures=refused)
    return events


def _record_run(tenant_id: int, error: str | None, failures: int) -> None:
    """Mark the tenant failing (with `error`) or not, and count its failures; best effort: an
    unreachable cache must not fail a rollup that is already committed."""
    try:
        if error is None:
            cache.delete(health.failing_key(tenant_id))
        else:
            cache.set(health.failing_key(tenant_id), error, timeout=health.FAILING_MARK_SECONDS)
        if failures:
            key = health.failures_key(tenant_id)
            cache.add(key, 0, timeout=None)
            cache.incr(key, failures)
    except Exception:
        log.warning("could not record the rollup health of tenant %s", tenant_id, exc_info=True)


class NotQuarantined(LookupError):
    """No quarantined batch has that id (in that tenant)."""


def _quarantined(batch_id: int, tenant_id: int | None) -> PendingBatch:
    # Operator-wide unless a tenant is named: the command looks batches up by id.
    rows = (
        PendingBatch.unscoped_all_tenants.all()
        if tenant_id is None
        else PendingBatch.objects.for_tenant(tenant_id)
    )
    batch = rows.filter(pk=batch_id, quarantined_at__isnull=False).first()
    if batch is None:
        raise NotQuarantined(batch_id)
    return batch


def retry_quarantined(batch_id: int, tenant_id: int | None = None) -> PendingBatch:
    """Put a quarantined batch back to pending with its failures cleared (after the cause
    was fixed, e.g. wider columns); the next run merges it, or refuses it `MAX_ATTEMPTS`
    times again. Raises `NotQuarantined` for any other id."""
    with transaction.atomic():
        batch = _quarantined(batch_id, tenant_id)
        lock_tenant(batch.tenant_id)
        batch.failures, batch.last_error, batch.failed_at, batch.quarantined_at = 0, "", None, None
        batch.save(update_fields=["failures", "last_error", "failed_at", "quarantined_at"])
    return batch


def drop_quarantined(batch_id: int, tenant_id: int | None = None) -> int:
    """Delete a quarantined batch and its events (never rolled up, so the rollups stay
    equal to the remaining events); returns the events deleted. Their event ids are free
    again: a client that resends them is accepted. Raises `NotQuarantined` for any other id."""
    with transaction.atomic():
        batch = _quarantined(batch_id, tenant_id)
        lock_tenant(batch.tenant_id)
        events = UsageEvent.objects.for_tenant(batch.tenant_id).filter(batch_id=batch.pk)
        deleted = events.delete()[0]
        batch.delete()
    log.warning("rollup quarantine: dropped batch %s of tenant %s", batch_id, batch.tenant_id)
    return deleted


def tenants_with_pending() -> list[int]:
    # Operator-wide sweep: which tenants have anything waiting, whoever they are.
    rows = PendingBatch.unscoped_all_tenants.filter(quarantined_at__isnull=True)
    return list(rows.values_list("tenant_id", flat=True).distinct())


def rollup_lag_seconds(tenant_id: int | None = None) -> float:
    """Age of the oldest stored event not yet in the rollups (0 when all are rolled up);
    quarantined batches are left out (they have their own gauge and /readyz problem)."""
    # With no tenant this is the operator-wide figure for /metrics and /readyz.
    pending = (
        PendingBatch.unscoped_all_tenants.all()
        if tenant_id is None
        else PendingBatch.objects.for_tenant(tenant_id)
    )
    pending = pending.filter(quarantined_at__isnull=True)
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    return 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())


def _day_start(since: date | datetime) -> datetime:
    day = since.date() if isinstance(since, datetime) else since
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def recompute(tenant: Tenant, since: date | datetime) -> int:
    """Rebuild the rollups of `tenant` from raw events, from the start of `since`'s UTC day,
    with the merge that every rollup run makes (over other events: `sql.add_settled_since`).

    Events of still-pending batches are left out here: their batch adds them when it is
    merged, so nothing is counted twice. Runs under the tenant's rollup lock.
    """
    start = _day_start(since)
    with transaction.atomic():
        lock_tenant(tenant.pk)
        for hourly in (HourlyRollup, HourlySlice):
            hourly.objects.for_tenant(tenant).filter(hour__gte=start).delete()
        for daily in (DailyRollup, DailySlice):
            daily.objects.for_tenant(tenant).filter(day__gte=start.date()).delete()
        ConsumerDailyRollup.objects.for_tenant(tenant).filter(day__gte=start.date()).delete()
        # Rebuilt below from the recomputed daily rows; with none listed the merge adds to none.
        windows.drop_windows(tenant.pk)
        count = sql.add_settled_since(tenant.pk, start)
        tag_sql.recompute_since(tenant.pk, start)
        # The merge added to all-time rows that still held the old sums of these days.
        rebuild_lifetime(tenant.pk)
        windows.ensure_windows(tenant.pk, timezone.now())
        return count


def refresh_consumer_windows(tenant_id: int) -> None:
    """Move a tenant's consumer windows to today's standard ranges, even with no new events."""
    with transaction.atomic():
        lock_tenant(tenant_id)
        windows.ensure_windows(tenant_id, timezone.now())


def all_tenant_ids() -> list[int]:
    return list(Tenant.objects.values_list("pk", flat=True))


def rebuild_lifetime(tenant_id: int) -> None:
    """All-time sums again from the daily rollups (after a recompute changed past days)."""
    LifetimeRollup.objects.for_tenant(tenant_id).delete()
    sql.lifetime_from_daily(tenant_id)


def delete_expired_events(retention_days: int) -> list[str]:
    """Drop the raw-event partitions wholly older than the retention (whole months, no row
    deletes; `ingest.partitions.drop_expired`); rollups stay."""
    return partitions.drop_expired(timezone.now() - timedelta(days=retention_days))


def make_event_partitions() -> list[str]:
    return partitions.ensure_ahead(timezone.now())
