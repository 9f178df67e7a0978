#!/usr/bin/env python
"""Where the time of one ingest request goes: per-component timings, in-process, no network.

Companion of `bench/ingest.py` (run that first: it creates the `costboard_bench` database).

    .venv/bin/python bench/ingest_profile.py               # component table
    .venv/bin/python bench/ingest_profile.py --cprofile 1  # + cProfile of single-event requests
    .venv/bin/python bench/ingest_profile.py --cprofile 100

Each line is the mean over many calls of wall time and of this process's CPU time; the
database's own CPU (the backend serving this process) is measured from /proc for the SQL
lines. Run it on an idle machine: other load inflates every figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import random
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# `bench/ingest.py` would shadow the app's `ingest` package: put the project root first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(ROOT))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", default="costboard_bench")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    ap.add_argument("--n", type=int, default=1000, help="calls per single-event line")
    ap.add_argument("--cprofile", type=int, default=0, help="also cProfile requests of N events")
    args = ap.parse_args()
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.db}",
        REDIS_URL=args.redis_url,
        SECRET_KEY="bench-secret",
        COSTBOARD_PLAIN_HTTP="1",  # plain http on 127.0.0.1
        DJANGO_SETTINGS_MODULE="costboard.settings",
        INGEST_RATE_LIMIT_PER_MINUTE="100000000",
        LOG_LEVEL="ERROR",
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "bench", "--team", "core"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    token = out.stdout.strip().splitlines()[-1]

    import psycopg
    import redis
    from django.core.cache import cache
    from django.db import connection, transaction
    from django.utils import timezone
    from psycopg import ClientCursor

    from costboard.wsgi import application

    logging.disable(logging.WARNING)  # the 400/401 lines would log one warning per call
    from ingest.models import PendingBatch
    from ingest.services import COLUMNS, PG_TYPES, TABLE, _rows, ingest_events
    from ingest.validation import validate_event
    from pipeline.scheduling import schedule_rollup
    from tenants.auth import ApiKeyRateThrottle
    from tenants.selectors import api_key_from_token

    key = api_key_from_token(token)
    assert key is not None
    now = timezone.now()
    ts = now.isoformat()
    rnd = random.Random(7)
    counter = [0]

    def event() -> dict[str, Any]:
        counter[0] += 1
        return {
            "event_id": f"prof-{time.time_ns()}-{counter[0]}", "provider": "openai",
            "model": "gpt-4o-mini", "input_tokens": rnd.randint(50, 4000),
            "output_tokens": rnd.randint(10, 1000), "feature": "chat", "user_id": "user-1",
            "latency_ms": 120, "timestamp": ts,
        }  # fmt: skip

    def environ(body: bytes, auth: bool = True) -> dict[str, Any]:
        env = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/events", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        }  # fmt: skip
        if auth:
            env["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return env

    def request(body: bytes, auth: bool = True) -> None:
        status = []
        result = application(environ(body, auth), lambda s, h, e=None: status.append(s))
        b"".join(result)
        result.close()

    def db_backend_pid() -> int | None:
        if connection.connection is None:
            return None
        return connection.connection.info.backend_pid

    def line(
        label: str, fn: Callable[[], Any], n: int, make: Callable[[], Any] | None = None
    ) -> None:
        inputs = [make() for _ in range(n + 20)] if make else [None] * (n + 20)
        try:
            for x in inputs[:20]:
                fn() if make is None else fn(x)
        except Exception as exc:  # the app changes; one broken line should not stop the rest
            print(f"  {label:<60s} failed: {exc!r}"[:160])
            return
        pid = db_backend_pid()
        db0 = proc_cpu(pid) if pid else 0.0
        c0, t0 = time.process_time(), time.perf_counter()
        for x in inputs[20:]:
            fn() if make is None else fn(x)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        db = (proc_cpu(pid) - db0) if pid and pid == db_backend_pid() else 0.0
        db_txt = f"{db / n * 1e6:8.0f}" if db else f"{'':8s}"
        print(f"  {label:<60s} {wall / n * 1e6:8.0f} {cpu / n * 1e6:8.0f} {db_txt}")

    n = args.n
    nb = max(50, n // 5)
    print(f"{'':62s} {'wall µs':>8s} {'CPU µs':>8s} {'pg CPU':>8s}")
    print("Whole requests through Django's WSGI handler (no network, no web server):")
    line("POST, no Authorization -> 401 (Django+DRF floor)", lambda: request(b"{}", auth=False), n)
    line(
        'POST {"events": []} -> 400 (+ key lookup, throttle)', lambda: request(b'{"events":[]}'), n
    )
    line("POST 1 event -> 202", lambda b: request(b), n, lambda: json.dumps(event()).encode())
    line(
        "POST 100 events -> 202", lambda b: request(b), nb,
        lambda: json.dumps({"events": [event() for _ in range(100)]}).encode(),
    )  # fmt: skip

    print("Per request, before the view:")
    line(
        "tenants.selectors.api_key_from_token(token)",
        lambda: api_key_from_token(token),
        n,
    )

    class Req:
        auth = key

    throttle = ApiKeyRateThrottle()
    line("tenants.auth.ApiKeyRateThrottle.allow_request()", lambda: throttle.allow_request(Req, None), n)  # fmt: skip
    line("  one Django RedisCache.get (new redis.Redis client per call)", lambda: cache.get("x"), n)
    plain = redis.Redis.from_url(args.redis_url)
    line("  one redis-py GET on a reused client", lambda: plain.get("x"), n)
    line("connection health check (SELECT 1, CONN_HEALTH_CHECKS)", lambda: connection.connection.execute("SELECT 1"), n)  # fmt: skip

    print("Inside ingest_events, per 100-event batch:")
    batch = [event() for _ in range(100)]
    body = json.dumps({"events": batch}).encode()
    line("json.loads(body, parse_float=Decimal)", lambda: json.loads(body, parse_float=Decimal), nb)
    line("validate_event x 100", lambda: [validate_event(e, now) for e in batch], nb)
    valid = [(validate_event(e, now)[0], key.team_id) for e in batch]
    line("_rows x 100 (pricing, row tuples)", lambda: list(_rows(key, 1, valid, now)), nb)
    tags = COLUMNS.index("tags")
    rows = [
        (*row[:tags], json.dumps(row[tags]), *row[tags + 1 :]) for row in _rows(key, 1, valid, now)
    ]
    columns = [list(c) for c in zip(*rows, strict=True)]
    unnest = ", ".join(f"%s::{t}[]" for t in PG_TYPES)
    sql = (
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) SELECT * FROM unnest({unnest}) "
        "ON CONFLICT (tenant_id, event_id) DO NOTHING"
    )
    raw = psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{args.db}")
    client_cursor = ClientCursor(raw)
    line("params as SQL literals (ClientCursor.mogrify: what Django does)", lambda: client_cursor.mogrify(sql, columns), nb)  # fmt: skip
    from psycopg._queries import PostgresQuery
    from psycopg.adapt import Transformer

    def dump_binary() -> None:
        PostgresQuery(Transformer(raw)).convert(sql.replace("%s", "%b"), columns)

    line("params dumped binary (server-side binding, %b)", dump_binary, nb)
    line(
        "store_events path: atomic + PendingBatch ORM create + COMMIT",
        lambda: _pending_batch(transaction, PendingBatch, key, now), n,
    )  # fmt: skip
    line("schedule_rollup (flag already set: one Redis SET NX)", lambda: schedule_rollup(key.tenant_id), n)  # fmt: skip
    line("ingest_events(key, [1 event])", lambda e: ingest_events(key, [e]), n, event)
    line("ingest_events(key, [100 events])", lambda es: ingest_events(key, es), nb, lambda: [event() for _ in range(100)])  # fmt: skip

    print("Database only (one psycopg connection, no Django), 100-row INSERT ... unnest + COMMIT:")
    bpid = raw.info.backend_pid
    for label, cursor, marker, prepare in (
        ("literal SQL (ClientCursor, as Django sends it)", client_cursor, "%s", None),
        ("binary parameters, prepared", raw.cursor(), "%b", True),
    ):
        stmt = sql.replace("%s", marker)
        payloads = []
        for b in range(nb + 10):
            part = [
                (r[0], r[1], f"prof-db-{time.time_ns()}-{b}-{i}", *r[3:])
                for i, r in enumerate(rows)
            ]
            payloads.append([list(c) for c in zip(*part, strict=True)])
        for p in payloads[:10]:
            cursor.execute(stmt, p, prepare=prepare)
            raw.commit()
        db0, c0, t0 = proc_cpu(bpid), time.process_time(), time.perf_counter()
        for p in payloads[10:]:
            cursor.execute(stmt, p, prepare=prepare)
            raw.commit()
        wall, cpu, db = time.perf_counter() - t0, time.process_time() - c0, proc_cpu(bpid) - db0
        print(f"  {label:<60s} {wall / nb * 1e6:8.0f} {cpu / nb * 1e6:8.0f} {db / nb * 1e6:8.0f}")
    raw.close()

    if args.cprofile:
        size = args.cprofile
        bodies = [
            json.dumps(
                event() if size == 1 else {"events": [event() for _ in range(size)]}
            ).encode()
            for _ in range(n if size == 1 else nb)
        ]
        profile = cProfile.Profile()
        profile.enable()
        for b in bodies:
            request(b)
        profile.disable()
        print(f"\ncProfile of {len(bodies)} requests of {size} event(s), by cumulative time:")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(45)


def _pending_batch(transaction: Any, model: Any, key: Any, now: Any) -> None:
    with transaction.atomic():
        model.objects.create(tenant_id=key.tenant_id, created_at=now, offered=0, rejected=0)


if __name__ == "__main__":
    main()
