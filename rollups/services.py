"""Rollup writes: fold pending ingest batches into the rollup tables, exactly once.

Ingest writes each request's events together with a `PendingBatch` row. `roll_up_pending`
reads the events of some pending batches, adds their sums to the rollups and deletes those
batches, all in one transaction. A crash rolls all of it back; a rerun finds only batches
not yet folded in; an event that arrives hours late just brings its own batch. There is no
id watermark to overtake, because each batch is consumed by deleting its own row.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from ingest.models import PendingBatch, UsageEvent
from pricing.catalog import TokenCounts
from pricing.resolver import pricer_for
from rollups import sql, windows
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
Row = dict[str, Any]


def _lock_tenant(tenant_id: int) -> None:
    """Serialise rollup writers of one tenant (a transaction-scoped advisory lock)."""
    with connection.cursor() as cursor:
        key = zlib.crc32(f"costboard-rollup-{tenant_id}".encode())
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def roll_up_pending(tenant_id: int, max_batches: int = MAX_BATCHES_PER_RUN) -> int:
    """Fold up to `max_batches` pending batches of a tenant into the rollups; returns events."""
    return _roll_up(tenant_id, max_batches)[1]


def _roll_up(tenant_id: int, max_batches: int) -> tuple[int, int]:
    """(batches folded in, events they held): a batch of only rejected events holds none."""
    with transaction.atomic():
        _lock_tenant(tenant_id)
        pending = PendingBatch.objects.for_tenant(tenant_id).select_for_update(skip_locked=True)
        batches = list(
            pending.order_by("pk").values("pk", "created_at", "offered", "rejected")[:max_batches]
        )
        if not batches:
            return 0, 0
        windows.ensure_windows(tenant_id, timezone.now())
        batch_ids = [b["pk"] for b in batches]
        count = _count_ingest(tenant_id, batches, sql.add_batches(tenant_id, batch_ids))
        PendingBatch.objects.for_tenant(tenant_id).filter(pk__in=batch_ids).delete()
    return len(batches), count


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
    like the others.
    """
    total = 0
    while True:
        batches, events = _roll_up(tenant_id, MAX_BATCHES_PER_RUN)
        total += events
        if batches < MAX_BATCHES_PER_RUN:
            return total


def tenants_with_pending() -> list[int]:
    # Operator-wide sweep: which tenants have anything waiting, whoever they are.
    rows = PendingBatch.unscoped_all_tenants.values_list("tenant_id", flat=True).distinct()
    return list(rows)


def rollup_lag_seconds(tenant_id: int | None = None) -> float:
    """Age of the oldest stored event not yet in the rollups (0 when all are rolled up)."""
    # With no tenant this is the operator-wide figure for /metrics and /readyz.
    pending = (
        PendingBatch.unscoped_all_tenants.all()
        if tenant_id is None
        else PendingBatch.objects.for_tenant(tenant_id)
    )
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    return 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())


def _day_start(since: date | datetime) -> datetime:
    day = since.date() if isinstance(since, datetime) else since
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def reprice_events(
    tenant: Tenant,
    since: datetime,
    progress: Callable[[int], None] | None = None,
    chunk: int = 5000,
) -> int:
    """Re-price stored events from `since` with today's prices (on purpose, never silently)."""
    pricer = pricer_for(tenant)
    events = UsageEvent.objects.for_tenant(tenant).filter(timestamp__gte=since).order_by("pk")
    done, last_pk = 0, 0
    while batch := list(events.filter(pk__gt=last_pk)[:chunk]):
        for e in batch:
            tokens = TokenCounts(
                e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens
            )
            e.cost_usd, e.cost_source = pricer.price(
                e.provider, e.model, tokens, e.timestamp, e.client_cost_usd
            )
        UsageEvent.objects.for_tenant(tenant).bulk_update(batch, ["cost_usd", "cost_source"])
        done, last_pk = done + len(batch), batch[-1].pk
        if progress:
            progress(done)
    return done


def recompute(tenant: Tenant, since: date | datetime) -> int:
    """Rebuild the rollups of `tenant` from raw events, from the start of `since`'s UTC day,
    with the merge that every rollup run makes (over other events: `sql.add_settled_since`).

    Events of still-pending batches are left out here: their batch adds them when it is
    merged, so nothing is counted twice. Runs under the tenant's rollup lock.
    """
    start = _day_start(since)
    with transaction.atomic():
        _lock_tenant(tenant.pk)
        for hourly in (HourlyRollup, HourlySlice):
            hourly.objects.for_tenant(tenant).filter(hour__gte=start).delete()
        for daily in (DailyRollup, DailySlice):
            daily.objects.for_tenant(tenant).filter(day__gte=start.date()).delete()
        ConsumerDailyRollup.objects.for_tenant(tenant).filter(day__gte=start.date()).delete()
        # Rebuilt below from the recomputed daily rows; with none listed the merge adds to none.
        windows.drop_windows(tenant.pk)
        count = sql.add_settled_since(tenant.pk, start)
        # The merge added to all-time rows that still held the old sums of these days.
        rebuild_lifetime(tenant.pk)
        windows.ensure_windows(tenant.pk, timezone.now())
        return count


def refresh_consumer_windows(tenant_id: int) -> None:
    """Move a tenant's consumer windows to today's standard ranges, even with no new events."""
    with transaction.atomic():
        _lock_tenant(tenant_id)
        windows.ensure_windows(tenant_id, timezone.now())


def all_tenant_ids() -> list[int]:
    return list(Tenant.objects.values_list("pk", flat=True))


def rebuild_lifetime(tenant_id: int) -> None:
    """All-time sums again from the daily rollups (after a recompute changed past days)."""
    LifetimeRollup.objects.for_tenant(tenant_id).delete()
    sql.lifetime_from_daily(tenant_id)


def delete_expired_events(retention_days: int, chunk: int = 5000) -> int:
    """Delete raw events older than the retention, a chunk per transaction; rollups stay."""
    cutoff = timezone.now() - timedelta(days=retention_days)
    deleted = 0
    # Retention is an operator-wide policy, applied to every tenant alike.
    expired = UsageEvent.unscoped_all_tenants.filter(timestamp__lt=cutoff)
    pending = PendingBatch.unscoped_all_tenants.values("pk")
    while ids := list(expired.exclude(batch_id__in=pending).values_list("pk", flat=True)[:chunk]):
        deleted += UsageEvent.unscoped_all_tenants.filter(pk__in=ids).delete()[0]
    return deleted
