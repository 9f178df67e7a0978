"""Rollup writes: fold pending ingest batches into the rollup tables, exactly once.

Ingest writes each request's events together with a `PendingBatch` row. `roll_up_pending`
reads the events of some pending batches, adds their sums to the rollups and deletes those
batches, all in one transaction. A crash rolls all of it back; a rerun finds only batches
not yet folded in; an event that arrives hours late just brings its own batch. There is no
id watermark to overtake, because each batch is consumed by deleting its own row.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import product
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Min, Model, Q, QuerySet, Sum
from django.utils import timezone

from ingest.models import PendingBatch, UsageEvent
from pricing.catalog import TokenCounts
from pricing.resolver import CostSource, pricer_for
from rollups import sql, windows
from rollups.models import (
    ALL_ENVIRONMENTS,
    CONSUMER_MEASURES,
    DIMENSIONS,
    LATENCY_BOUNDS_MS,
    LATENCY_FIELDS,
    NO_TEAM,
    SLICES,
    TOKENS_BOUNDS,
    TOKENS_FIELDS,
    ConsumerDailyRollup,
    DailyRollup,
    DailySlice,
    HourlyRollup,
    HourlySlice,
    IngestCount,
    LifetimeRollup,
)
from tenants.models import Tenant

# Batches per transaction. A merge's cost is mostly one upsert per consumer it saw, whether
# it holds 10k events or 100k, so a debounced run takes everything pending at once: 2,000
# requests of 100 events is 25 s of ingest at 8k events/s.
MAX_BATCHES_PER_RUN = 2000
Row = dict[str, Any]


def _measures() -> dict[str, Any]:
    src = CostSource
    measures: dict[str, Any] = {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status_code__gte=400)),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "cache_read_tokens": Sum("cache_read_tokens"),
        "cache_write_tokens": Sum("cache_write_tokens"),
        "cost_usd": Sum("cost_usd"),
        "cost_override": Sum("cost_usd", filter=Q(cost_source=src.OVERRIDE)),
        "cost_catalog": Sum("cost_usd", filter=Q(cost_source=src.CATALOG)),
        "cost_client": Sum("cost_usd", filter=Q(cost_source=src.CLIENT)),
        "unpriced_requests": Count("id", filter=Q(cost_source=src.UNPRICED)),
        "unpriced_tokens": Sum(
            F("input_tokens") + F("output_tokens"), filter=Q(cost_source=src.UNPRICED)
        ),
        "latency_sum_ms": Sum("latency_ms"),
        "latency_count": Count("latency_ms"),
    }
    measures.update(_histogram("latency_ms", LATENCY_FIELDS, LATENCY_BOUNDS_MS))
    measures.update(_histogram("total_tokens", TOKENS_FIELDS, TOKENS_BOUNDS))
    return measures


def _histogram(field: str, names: tuple[str, ...], bounds: tuple[int, ...]) -> dict[str, Count]:
    """One COUNT per bucket (lower, upper]; the last bucket takes everything above."""
    counts, lower = {}, None
    for name, upper in zip(names, (*bounds, None), strict=True):
        bucket = Q(**{f"{field}__isnull": False})
        bucket &= Q(**{f"{field}__gt": lower}) if lower is not None else Q()
        bucket &= Q(**{f"{field}__lte": upper}) if upper is not None else Q()
        counts[name] = Count("id", filter=bucket)
        lower = upper
    return counts


MEASURES = tuple(_measures())


def _annotated(grouped: QuerySet[Any], measures: dict[str, Any]) -> Iterable[Row]:
    """Annotate under prefixed names (a sum may not shadow its own field), then unprefix."""
    for row in grouped.annotate(**{f"m_{k}": v for k, v in measures.items()}).order_by():
        out = {k: v for k, v in row.items() if not k.startswith("m_")}
        for name in measures:
            value = row[f"m_{name}"]
            out[name] = value if value is not None else (Decimal(0) if "cost" in name else 0)
        yield out


def _hourly_rows(events: QuerySet[UsageEvent]) -> list[Row]:
    events = events.alias(total_tokens=F("input_tokens") + F("output_tokens"))
    grouped = events.values("hour", "team_id", "feature", "provider", "model", "environment")
    rows = []
    for row in _annotated(grouped, _measures()):
        row["team_pk"] = row.pop("team_id") or NO_TEAM
        rows.append(row)
    return rows


def _regroup(hourly: list[Row], time_key: Callable[[Row], dict[str, Any]]) -> list[Row]:
    """Sum hourly rows into coarser ones: per UTC day, or over all time (no time key)."""
    groups: dict[tuple[Any, ...], Row] = {}
    for row in hourly:
        head = {**time_key(row), **{d: row[d] for d in DIMENSIONS}}
        target = groups.setdefault(tuple(head.values()), head)
        for name in MEASURES:
            target[name] = target.get(name, 0) + row[name]
    return list(groups.values())


def _day(row: Row) -> dict[str, Any]:
    return {"day": timezone.localtime(row["hour"], UTC).date()}


_BLANK = {"team_pk": NO_TEAM, "feature": "", "provider": "", "model": ""}


def _slices(rows: list[Row], time_field: str) -> list[Row]:
    """Each row summed into every slice: the slice's dimensions kept, the others blank; once
    for its environment and once for all of them."""
    groups: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        for (name, kept), environment in product(
            SLICES.items(), (row["environment"], ALL_ENVIRONMENTS)
        ):
            head = {time_field: row[time_field], "grouping": name}
            head |= {d: row[d] if d in kept else blank for d, blank in _BLANK.items()}
            head["environment"] = environment
            target = groups.setdefault(tuple(head.values()), head)
            for measure in MEASURES:
                target[measure] = target.get(measure, 0) + row[measure]
    return list(groups.values())


def _consumer_rows(events: QuerySet[UsageEvent], kind: str, field: str) -> list[Row]:
    grouped = events.exclude(**{field: None})
    grouped = grouped.exclude(**{field: ""}) if field == "user_id" else grouped
    grouped = grouped.values("hour", field, "team_id", "environment")
    sums = {"requests": Count("id"), **{m: Sum(m) for m in CONSUMER_MEASURES[1:]}}
    days: dict[tuple[Any, ...], Row] = {}
    for row in _annotated(grouped, sums):
        day = timezone.localtime(row["hour"], UTC).date()
        key = (day, str(row[field]), row["team_id"] or NO_TEAM, row["environment"])
        target = days.setdefault(
            key,
            {
                "day": day,
                "kind": kind,
                "consumer": key[1],
                "team_pk": key[2],
                "environment": key[3],
            },
        )
        for name in CONSUMER_MEASURES:
            target[name] = target.get(name, 0) + row[name]
    return list(days.values())


def _upsert_add(
    model: type[Model],
    tenant_id: int,
    keys: tuple[str, ...],
    measures: Iterable[str],
    rows: list[Row],
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE SET m = m + excluded.m: addition, so merges commute."""
    if not rows:
        return
    table = model._meta.db_table
    measures = tuple(measures)
    columns = ("tenant_id", *keys, *measures)
    updates = ", ".join(f"{m} = {table}.{m} + excluded.{m}" for m in measures)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "  # noqa: S608
        f"ON CONFLICT (tenant_id, {', '.join(keys)}) DO UPDATE SET {updates}"
    )
    # Sorted, so two writers touching the same rows always lock them in the same order.
    rows = sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))
    params = [(tenant_id, *(r[k] for k in keys), *(r[m] for m in measures)) for r in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def add_to_rollups(tenant_id: int, events: QuerySet[UsageEvent]) -> int:
    """Add the sums of `events` to every rollup table; returns the number of events."""
    hourly = _hourly_rows(events)
    daily = _regroup(hourly, _day)
    _upsert_add(HourlyRollup, tenant_id, ("hour", *DIMENSIONS), MEASURES, hourly)
    _upsert_add(DailyRollup, tenant_id, ("day", *DIMENSIONS), MEASURES, daily)
    slice_keys = ("grouping", *DIMENSIONS)
    _upsert_add(HourlySlice, tenant_id, ("hour", *slice_keys), MEASURES, _slices(hourly, "hour"))
    _upsert_add(DailySlice, tenant_id, ("day", *slice_keys), MEASURES, _slices(daily, "day"))
    _upsert_add(LifetimeRollup, tenant_id, DIMENSIONS, MEASURES, _regroup(hourly, lambda row: {}))
    consumer_keys = ("day", "kind", "consumer", "team_pk", "environment")
    for kind, field in (("user", "user_id"), ("key", "api_key_id")):
        rows = _consumer_rows(events, kind, field)
        _upsert_add(ConsumerDailyRollup, tenant_id, consumer_keys, CONSUMER_MEASURES, rows)
        windows.add_daily_rows(tenant_id, rows)
    return sum(row["requests"] for row in hourly)


def _lock_tenant(tenant_id: int) -> None:
    """Serialise rollup writers of one tenant (PostgreSQL; SQLite serialises all writers)."""
    if connection.vendor == "postgresql":
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
        events = UsageEvent.objects.for_tenant(tenant_id).filter(batch_id__in=batch_ids)
        if connection.vendor == "postgresql":
            stored = sql.add_batches(tenant_id, batch_ids)
        else:
            add_to_rollups(tenant_id, events)
            stored = _events_per_batch(events)
        count = _count_ingest(tenant_id, batches, stored)
        PendingBatch.objects.for_tenant(tenant_id).filter(pk__in=batch_ids).delete()
    return len(batches), count


def _events_per_batch(events: QuerySet[UsageEvent]) -> dict[int, int]:
    return dict(
        events.values("batch_id").annotate(n=Count("id")).values_list("batch_id", "n").order_by()
    )


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
    _upsert_add(
        IngestCount,
        tenant_id,
        ("day",),
        ("accepted", "duplicates", "rejected"),
        list(days.values()),
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
    """Rebuild the rollups of `tenant` from raw events, from the start of `since`'s UTC day.

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
        pending = PendingBatch.objects.for_tenant(tenant).values("pk")
        events = UsageEvent.objects.for_tenant(tenant).filter(hour__gte=start)
        windows.drop_windows(tenant.pk)  # rebuilt below from the recomputed daily rows
        count = add_to_rollups(tenant.pk, events.exclude(batch_id__in=pending))
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
    days = DailyRollup.objects.for_tenant(tenant_id).values(*DIMENSIONS)
    rows = list(_annotated(days, {name: Sum(name) for name in MEASURES}))
    _upsert_add(LifetimeRollup, tenant_id, DIMENSIONS, MEASURES, rows)


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
