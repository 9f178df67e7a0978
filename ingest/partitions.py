"""Monthly partitions of raw events: made ahead, made on demand, detached and dropped.

`ingest_usageevent` is range-partitioned by `timestamp` (UTC months). `timestamp` rather
than `hour`: they always fall in the same month (`hour` is `timestamp` cut to the hour), and
retention and the (tenant, timestamp) index read `timestamp`; the rollup merge finds its
events by `batch_id` in every partition either way.

Idempotency lives in `ingest_eventkey` (tenant_id, event_id), an ordinary table written in
the same statement or transaction as the events: a partitioned table's unique index would
have to include `timestamp`, and a retry of an event sent without one gets another time.
Its rows are removed when their event's partition is dropped (`drop_expired`).

Everything here is a single statement or transaction-scoped (advisory *xact* locks), so it
is safe behind PgBouncer in transaction pooling mode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection, transaction

from core.locks import xact_lock

log = logging.getLogger(__name__)

TABLE = "ingest_usageevent"
KEYS = "ingest_eventkey"
PREFIX = f"{TABLE}_p"  # ingest_usageevent_p202612
AHEAD = 2  # months made ahead of the current one by beat
# pg_advisory_xact_lock key for creating partitions: two requests meeting the same new month
# wait for each other instead of failing on "already exists".
LOCK_KEY = 0x1E7E_0001
Month = tuple[int, int]  # (year, month)

_known: set[Month] = set()  # months this process saw a partition for (they are never
# dropped while ingest may still write them: validation refuses events past retention)


def month_of(at: datetime) -> Month:
    at = at.astimezone(UTC) if at.tzinfo is not UTC else at
    return at.year, at.month


def next_month(month: Month) -> Month:
    year, m = month
    return (year + 1, 1) if m == 12 else (year, m + 1)


def start_of(month: Month) -> datetime:
    return datetime(month[0], month[1], 1, tzinfo=UTC)


def name_of(month: Month) -> str:
    return f"{PREFIX}{month[0]:04d}{month[1]:02d}"


def create_sql(month: Month, parent: str = TABLE, name: str | None = None) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {name or name_of(month)} PARTITION OF {parent} "
        f"FOR VALUES FROM ('{start_of(month).isoformat()}') "
        f"TO ('{start_of(next_month(month)).isoformat()}')"
    )


def existing_months() -> set[Month]:
    """The months that have an attached partition."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        names = [name for (name,) in cursor.fetchall()]
    return {(int(n[-6:-2]), int(n[-2:])) for n in names if n.startswith(PREFIX)}


def ensure_for(times: Iterable[datetime]) -> None:
    """Make sure every month of these event times has a partition (cheap when known)."""
    missing = {month_of(t) for t in times} - _known
    if missing:
        ensure_months(missing)


def ensure_months(months: set[Month]) -> None:
    """Create the months' partitions that do not exist yet, in one short transaction (a
    savepoint inside a caller's): late and back-dated events are never refused for it."""
    if not months - _known:
        return
    existing = existing_months()
    missing = sorted(months - existing)
    if missing:
        with transaction.atomic(), connection.cursor() as cursor:
            xact_lock(LOCK_KEY)
            for month in missing:
                cursor.execute(create_sql(month))
                log.info("raw events: partition %s created", name_of(month))
    # Remembered only once committed: a caller's transaction may still roll them back.
    if not connection.in_atomic_block:
        _known.update(existing | months)


def ensure_ahead(now: datetime, ahead: int = AHEAD) -> list[str]:
    """Beat: this month's partition and the next `ahead` months'."""
    months = [month_of(now)]
    for _ in range(ahead):
        months.append(next_month(months[-1]))
    ensure_months(set(months))
    return [name_of(m) for m in months]


def forget() -> None:
    """Forget the process's known partitions (after partitions were dropped)."""
    _known.clear()


def drop_expired(cutoff: datetime, chunk: int = 5000) -> list[str]:
    """Detach and drop every partition wholly older than `cutoff` (its month ended before it);
    the month holding the cutoff keeps its rows until it is wholly past, so raw events live
    up to a month longer than the retention. A partition still holding events of a pending
    batch (not rolled up yet) waits for the next run. Returns the partitions dropped.

    DETACH ... CONCURRENTLY when not inside a transaction (ingest goes on meanwhile);
    a partition left detached by a crash is found again by name and finished."""
    dropped = []
    for month in sorted(existing_months() | _detached_months()):
        if start_of(next_month(month)) > cutoff:
            continue
        name = name_of(month)
        if _holds_pending(name):
            log.info("raw events: %s keeps pending batches' events; dropped later", name)
            continue
        if month in existing_months():
            concurrently = "" if connection.in_atomic_block else " CONCURRENTLY"
            if _detach_pending(name):  # a CONCURRENTLY interrupted half-way: finish it
                concurrently = " FINALIZE"
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}{concurrently}")
        _purge_keys(name, chunk)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {name}")
        log.info("raw events: partition %s dropped", name)
        dropped.append(name)
    forget()
    return dropped


def _detached_months() -> set[Month]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class c WHERE relname LIKE %s AND relkind = 'r' "
            "AND NOT relispartition",
            [PREFIX.replace("_", r"\_") + "%"],
        )
        return {(int(n[-6:-2]), int(n[-2:])) for (n,) in cursor.fetchall()}


def _detach_pending(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = %s::regclass "
            "AND inhdetachpending)",
            [name],
        )
        return bool(cursor.fetchone()[0])


def _holds_pending(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT FROM {name} e JOIN ingest_pendingbatch p "  # noqa: S608
            "ON p.id = e.batch_id)"
        )
        return bool(cursor.fetchone()[0])


def _purge_keys(name: str, chunk: int) -> None:
    """The detached month's idempotency keys, `chunk` events' keys per statement, by id
    (the key table is narrow; the events themselves are never row-deleted)."""
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT max(id) FROM (SELECT id FROM {name} WHERE id > %s "  # noqa: S608
                "ORDER BY id LIMIT %s) c",
                [last, chunk],
            )
            upto = cursor.fetchone()[0]
            if upto is None:
                return
            cursor.execute(
                f"DELETE FROM {KEYS} k USING {name} e WHERE e.id > %s AND e.id <= %s "  # noqa: S608
                "AND k.tenant_id = e.tenant_id AND k.event_id = e.event_id",
                [last, upto],
            )
        last = upto
