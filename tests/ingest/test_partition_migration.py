"""Migration 0004's moves on a populated table while a writer inserts, updates and deletes:
every event is in the partitioned table once, as last written, with its idempotency key."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from django.db import connection

from ingest import partition_migration

SOURCE = "mig_events"
ROWS = 20_000
COLUMNS = (
    "event_id, batch_id, timestamp, hour, received_at, tenant_id, provider, model, "
    "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, feature, endpoint, "
    "user_id, environment, status_code, cost_usd, cost_source, tags"
)


def _values(event_id: str, days_ago: str) -> str:
    at = f"now() - ({days_ago}) * interval '1 day'"
    return (
        f"{event_id}, 1, {at}, date_trunc('hour', {at}), now(), 1, 'openai', 'gpt-4o', "
        "10, 5, 0, 0, '', '', '', 'production', 200, 0.5, 'catalog', '{}'::jsonb"
    )


OLD_ROW = _values("'old-' || g", "g % 200")
AFTER_ROW = _values("'after'", "0")


def _fill() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {SOURCE} (LIKE ingest_usageevent INCLUDING DEFAULTS INCLUDING IDENTITY)"
        )
        cursor.execute(f"ALTER TABLE {SOURCE} ADD PRIMARY KEY (id)")
        cursor.execute(f"ALTER TABLE {SOURCE} ADD UNIQUE (tenant_id, event_id)")
        cursor.execute(
            f"INSERT INTO {SOURCE} ({COLUMNS}) SELECT {OLD_ROW} FROM generate_series(1, {ROWS}) g"
        )


def _writer(dsn: str, stop: threading.Event, done: dict[str, Any]) -> None:
    """Inserts new events, deletes and updates old ones, each in its own transaction: the
    code before the migration, then after the swap the code after it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        n = 0
        while not stop.is_set() or n < 50:
            n += 1
            row = _values(f"'new-{n}'", "0")
            with conn.transaction():
                conn.execute(f"INSERT INTO {SOURCE} ({COLUMNS}) VALUES ({row})")
                if done["swapped"].is_set():  # then ingest writes the key itself, as ours does
                    conn.execute(f"INSERT INTO {SOURCE}_keys VALUES (1, 'new-{n}')")
            done["inserted"].add(f"new-{n}")
            conn.execute(f"DELETE FROM {SOURCE} WHERE event_id = 'old-{n * 37}'")
            done["deleted"].add(f"old-{n * 37}")
            conn.execute(f"UPDATE {SOURCE} SET cost_usd = 7 WHERE event_id = 'old-{n * 41 + 1}'")
            done["updated"].add(f"old-{n * 41 + 1}")


@pytest.mark.django_db(transaction=True)
def test_it_moves_a_live_table_without_losing_or_doubling_an_event() -> None:
    _fill()
    settings = connection.settings_dict
    dsn = f"host={settings['HOST']} port={settings['PORT'] or 5432} user={settings['USER']} dbname={settings['NAME']}"
    stop = threading.Event()
    done: dict[str, Any] = {"inserted": set(), "deleted": set(), "updated": set()}
    done["swapped"] = threading.Event()
    writer = threading.Thread(target=_writer, args=(dsn, stop, done))
    writer.start()
    try:
        timings = partition_migration.migrate(
            connection,
            SOURCE,
            400,
            chunk=1000,
            progress=lambda _: None,
            swapped=done["swapped"].set,
        )
    finally:
        stop.set()
        writer.join()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT relkind FROM pg_class WHERE relname = '{SOURCE}'")
            assert cursor.fetchone()[0] == "p"  # partitioned now
            cursor.execute(f"SELECT event_id, cost_usd FROM {SOURCE}")
            rows = cursor.fetchall()
            cursor.execute(f"SELECT event_id FROM {SOURCE}_keys")
            keys = sorted(k for (k,) in cursor.fetchall())
            # New ids carry on after the old ones.
            cursor.execute(f"INSERT INTO {SOURCE} ({COLUMNS}) VALUES ({AFTER_ROW}) RETURNING id")
            after = cursor.fetchone()[0]
            cursor.execute(f"SELECT max(id) FROM {SOURCE} WHERE event_id <> 'after'")
            assert after > cursor.fetchone()[0]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {SOURCE}, {SOURCE}_keys, {SOURCE}_parted CASCADE")
            cursor.execute(f"DROP FUNCTION IF EXISTS {SOURCE}_forget_key(), {SOURCE}_mirror()")
    ids = [event_id for event_id, _ in rows]
    expected = ({f"old-{i}" for i in range(1, ROWS + 1)} | done["inserted"]) - done["deleted"]
    assert len(ids) == len(set(ids))  # nothing doubled
    assert set(ids) == expected  # nothing lost, nothing deleted comes back
    assert keys == sorted(expected)
    costs = dict(rows)
    assert all(costs[e] == 7 for e in done["updated"] - done["deleted"])
    assert len(done["inserted"]) >= 50 and set(timings) == {
        "prepare",
        "copy",
        "swap (ACCESS EXCLUSIVE)",
    }
