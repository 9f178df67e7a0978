"""Moving a populated, live raw-event table into monthly partitions (migration 0004).

1. `prepare`: the partitioned twin `<table>_parted` (same columns and defaults, primary key
   (id, timestamp), the same indexes), a partition for every month from the oldest stored
   event (or the retention window's start) to two months ahead, the idempotency key table,
   and a trigger on the old table mirroring every INSERT, UPDATE and DELETE into both. The
   trigger's CREATE waits for writers in flight; every write after it is mirrored.
2. `copy_chunks`: the old rows by id range, a chunk per transaction, `FOR SHARE`: a
   concurrent UPDATE or DELETE of a row being copied waits for the chunk's commit, then its
   trigger fixes the copy; a row the trigger copied first is skipped (ON CONFLICT).
   Ingest goes on meanwhile; only the rows of one chunk are locked, and only against change.
3. `swap`: under ACCESS EXCLUSIVE on the old table (writers wait; milliseconds): the names
   are swapped, the id sequence carries on where the old one was, the old table is dropped,
   and a delete trigger makes a deleted event take its idempotency key along.

Nothing is lost (every row is copied or mirrored) or doubled (the primary key and the key
table absorb a row arriving both ways). Each step is a statement or a transaction: the
whole can run through PgBouncer, and a step that fails can be run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest import partitions

Progress = Callable[[str], None]


def _names(table: str) -> dict[str, str]:
    return {
        "old": table,
        "new": f"{table}_parted",
        "keys": f"{table}_keys" if table != partitions.TABLE else partitions.KEYS,
        "fn": f"{table}_mirror",
    }


def _months(first: datetime, last: datetime) -> list[partitions.Month]:
    months = [partitions.month_of(first)]
    while months[-1] < partitions.month_of(last):
        months.append(partitions.next_month(months[-1]))
    return months


def prepare(cursor: Any, table: str, now: datetime, retention_days: int) -> None:
    n = _names(table)
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {n['keys']} (tenant_id bigint NOT NULL, "
        "event_id varchar(128) NOT NULL, PRIMARY KEY (tenant_id, event_id))"
    )
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {n['new']} (LIKE {table} INCLUDING DEFAULTS) "
        'PARTITION BY RANGE ("timestamp")'
    )
    cursor.execute(f"SELECT min(timestamp) FROM {table}")  # noqa: S608 - table names of ours
    oldest = cursor.fetchone()[0]
    first = now - timedelta(days=retention_days)
    first = min(first, oldest) if oldest else first
    for month in _months(first, _ahead(now)):
        name = f"{table}_p{month[0]:04d}{month[1]:02d}"
        cursor.execute(partitions.create_sql(month, parent=n["new"], name=name))
    cursor.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = "
        f"'{n['new']}_pkey') THEN ALTER TABLE {n['new']} ADD CONSTRAINT {n['new']}_pkey "
        'PRIMARY KEY (id, "timestamp"); END IF; END $$'
    )
    cursor.execute(
        f'CREATE INDEX IF NOT EXISTS {n["new"]}_tenant_time ON {n["new"]} (tenant_id, "timestamp")'
    )
    cursor.execute(f"CREATE INDEX IF NOT EXISTS {n['new']}_batch ON {n['new']} (batch_id)")
    cursor.execute(
        f"CREATE OR REPLACE FUNCTION {n['fn']}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "  # noqa: S608 - table names of ours
        "IF TG_OP <> 'INSERT' THEN "
        f"DELETE FROM {n['new']} WHERE id = OLD.id AND timestamp = OLD.timestamp; "
        "IF TG_OP = 'DELETE' THEN "
        f"DELETE FROM {n['keys']} WHERE tenant_id = OLD.tenant_id AND event_id = OLD.event_id; "
        "END IF; END IF; "
        "IF TG_OP <> 'DELETE' THEN "
        f"INSERT INTO {n['new']} SELECT NEW.* ON CONFLICT DO NOTHING; "
        f"INSERT INTO {n['keys']} VALUES (NEW.tenant_id, NEW.event_id) ON CONFLICT DO NOTHING; "
        "END IF; RETURN NULL; END $$"
    )
    cursor.execute(f"DROP TRIGGER IF EXISTS {n['fn']} ON {table}")
    cursor.execute(
        f"CREATE TRIGGER {n['fn']} AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {n['fn']}()"
    )


def _ahead(now: datetime) -> datetime:
    month = partitions.month_of(now)
    for _ in range(partitions.AHEAD):
        month = partitions.next_month(month)
    return partitions.start_of(month)


def copy_chunks(
    run: Callable[[str, list[Any]], Any], table: str, chunk: int, progress: Progress
) -> int:
    """Copy the old rows, `chunk` ids per transaction (`run` executes one statement in a
    transaction of its own and returns its first row); returns the rows copied."""
    n = _names(table)
    low, high = run(f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {table}", [])  # noqa: S608 - table names of ours
    copied, started = 0, time.monotonic()
    for start in range(low - 1, high, chunk):
        (done,) = run(
            f"WITH src AS (SELECT * FROM {table} WHERE id > %s AND id <= %s FOR SHARE), "  # noqa: S608 - table names of ours
            f"k AS (INSERT INTO {n['keys']} SELECT tenant_id, event_id FROM src "
            "ON CONFLICT DO NOTHING), "
            f"ins AS (INSERT INTO {n['new']} SELECT * FROM src ON CONFLICT DO NOTHING "
            "RETURNING 1) SELECT count(*) FROM ins",
            [start, start + chunk],
        )
        copied += done
        progress(
            f"copied ids up to {min(start + chunk, high):,} of {high:,} "
            f"({copied:,} rows, {time.monotonic() - started:.1f} s)"
        )
    return copied


def swap(cursor: Any, table: str) -> None:
    """In the caller's transaction: the brief ACCESS EXCLUSIVE part."""
    n = _names(table)
    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))")
    (next_id,) = cursor.fetchone()
    cursor.execute(f"DROP TRIGGER {n['fn']} ON {table}")
    cursor.execute(f"DROP TABLE {table}")
    cursor.execute(f"DROP FUNCTION {n['fn']}()")
    cursor.execute(f"ALTER TABLE {n['new']} RENAME TO {table}")
    cursor.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {n['new']}_pkey TO {table}_pkey")
    for index, to in _index_names(table):
        cursor.execute(f"ALTER INDEX {n['new']}_{index} RENAME TO {to}")
    cursor.execute(f"ALTER TABLE {table} ALTER id ADD GENERATED BY DEFAULT AS IDENTITY")
    # An event deleted (its tenant deleted, ...) takes its idempotency key along; dropped
    # partitions fire no trigger: retention purges their keys itself.
    cursor.execute(
        f"CREATE OR REPLACE FUNCTION {table}_forget_key() RETURNS trigger LANGUAGE plpgsql "  # noqa: S608 - table names of ours
        f"AS $$ BEGIN DELETE FROM {n['keys']} WHERE tenant_id = OLD.tenant_id "
        "AND event_id = OLD.event_id; RETURN NULL; END $$"
    )
    cursor.execute(
        f"CREATE TRIGGER {table}_forget_key AFTER DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_forget_key()"
    )
    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [next_id])


def _index_names(table: str) -> list[tuple[str, str]]:
    if table == partitions.TABLE:  # the names Django's state knows
        return [("tenant_time", "event_tenant_time"), ("batch", "event_batch")]
    return [("tenant_time", f"{table}_tenant_time"), ("batch", f"{table}_batch")]


def migrate(
    connection: Any,
    table: str,
    retention_days: int,
    chunk: int = 100_000,
    progress: Progress = print,
    swapped: Callable[[], None] | None = None,
) -> dict[str, float]:
    """The three steps on a Django connection in autocommit; returns each step's seconds."""
    timings: dict[str, float] = {}

    def run(sql: str, params: list[Any]) -> Any:
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(sql, params)
            row = cursor.fetchone()
            cursor.execute("COMMIT")
        return row

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        prepare(cursor, table, datetime.now(UTC), retention_days)
        cursor.execute("COMMIT")
    timings["prepare"] = time.monotonic() - started
    started = time.monotonic()
    copy_chunks(run, table, chunk, progress)
    timings["copy"] = time.monotonic() - started
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        swap(cursor, table)
        if swapped is not None:  # a test's writer: from the commit on, it is the new code
            swapped()
        cursor.execute("COMMIT")
    timings["swap (ACCESS EXCLUSIVE)"] = time.monotonic() - started
    return timings
