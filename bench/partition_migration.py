#!/usr/bin/env python
"""Times migration 0004's moves (`ingest.partition_migration`) on a populated raw-event table.

    .venv/bin/python bench/partition_migration.py --rows 1000000 [--db costboard_partbench]

Drops and recreates a throwaway database, migrates it (so `ingest_usageevent` exists, then
partitioned), makes `bench_events`, a plain table shaped as the table was before 0004
(identity id, primary key, unique (tenant_id, event_id), the two indexes), fills it with
`--rows` events spread over 12 months by generate_series, and runs the three moves on it:
prepare (trigger + empty partitions), the chunked copy (no lock held against ingest but
`FOR SHARE` on one chunk's rows), and the swap (ACCESS EXCLUSIVE on the table). Prints each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SOURCE = "bench_events"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--chunk", type=int, default=100_000)
    ap.add_argument("--db", default="costboard_partbench")
    args = ap.parse_args()
    url = f"postgres://postgres@127.0.0.1:5432/{args.db}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {args.db}")
        conn.execute(f"CREATE DATABASE {args.db}")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": os.environ.get("SECRET_KEY", "x")}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costboard.settings")
    import django

    django.setup()
    from django.db import connection

    from ingest import partition_migration

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {SOURCE} (LIKE ingest_usageevent INCLUDING DEFAULTS INCLUDING IDENTITY)"
        )
        cursor.execute(
            f"INSERT INTO {SOURCE} (event_id, batch_id, timestamp, hour, received_at, tenant_id, "
            "provider, model, input_tokens, output_tokens, cache_read_tokens, "
            "cache_write_tokens, feature, endpoint, user_id, environment, status_code, cost_usd, "
            "cost_source, tags) SELECT 'evt-' || g, g / 100, t, date_trunc('hour', t), t, "
            "1 + g % 50, 'openai', 'gpt-4o', 1000, 500, 0, 0, 'feature-' || g % 200, "
            "'endpoint-' || g % 100, 'user-' || g % 100000, 'production', 200, 0.0125, "
            "'catalog', '{}'::jsonb FROM (SELECT g, now() - (g % 360) * interval '1 day' "
            f"- (g % 86400) * interval '1 second' AS t FROM generate_series(1, {args.rows}) g) s"
        )
        cursor.execute(f"ALTER TABLE {SOURCE} ADD PRIMARY KEY (id)")
        cursor.execute(f"ALTER TABLE {SOURCE} ADD UNIQUE (tenant_id, event_id)")
        cursor.execute(f"CREATE INDEX ON {SOURCE} (tenant_id, timestamp)")
        cursor.execute(f"CREATE INDEX ON {SOURCE} (batch_id)")
        cursor.execute(f"VACUUM ANALYZE {SOURCE}")
    print(f"filled {args.rows:,} events in {time.monotonic() - started:.1f} s", flush=True)
    timings = partition_migration.migrate(
        connection, SOURCE, 400, chunk=args.chunk, progress=lambda line: print(line, flush=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {SOURCE}")
        count = cursor.fetchone()[0]
    print(f"\n{args.rows:,} events moved ({count:,} in the partitioned table)")
    locks = {
        "prepare": "SHARE ROW EXCLUSIVE for CREATE TRIGGER (waits for writers in flight)",
        "copy": "FOR SHARE on one chunk's rows at a time (inserts go on)",
        "swap (ACCESS EXCLUSIVE)": "ACCESS EXCLUSIVE: readers and writers wait",
    }
    for step, seconds in timings.items():
        print(f"{step:<26} {seconds:9.2f} s   {locks[step]}")
    connection.close()
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {args.db}")


if __name__ == "__main__":
    main()
