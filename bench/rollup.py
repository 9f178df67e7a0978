"""Benchmark: rollup throughput, freshness and CPU while an ingest load runs.

    .venv/bin/python bench/rollup.py [--seconds 30] [--clients 4] [--rate 0] [--tag-keys 0]
    (BENCH_DB=... BENCH_REDIS_DB=... to use another scratch database and Redis db)

Starts the web server and a real Celery worker on a scratch PostgreSQL database and Redis, drives a
batch ingest load (100-event POSTs from several client processes; `--rate` events/s in all,
0 = as fast as they go), and meanwhile sends a probe event every half second and times how
long until `/api/v1/usage` shows it (freshness: 202 to visible). Prints the ingest rate,
events rolled up per second of worker CPU, freshness p50/p95/max, and the rollup worker's
CPU as a share of the web workers' CPU. Targets: freshness p95 <= 10 s; rollup CPU <= 10 %
of ingest CPU, each with the CPU of its PostgreSQL backends (connections are named by
`application_name`, so pg_stat_activity tells whose backend is whose).

Every event carries two tags, `customer_tier` (50 values) and `prompt_version` (1,000 values);
`--tag-keys 2` chooses both as tag dimensions (0: none), so the two runs differ only in the
tag rollups' cost. BENCH_DB and BENCH_REDIS_DB name another scratch database and Redis db.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
# BENCH_DB and BENCH_REDIS_DB let two checkouts benchmark side by side without sharing a scratch
# database.
DB = os.environ.get("BENCH_DB", "costboard_bench_rollup")
REDIS_DB = os.environ.get("BENCH_REDIS_DB", "4")
ENV = {
    **os.environ,
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
    "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
    "SECRET_KEY": "bench-secret",
    "COSTBOARD_PLAIN_HTTP": "1",  # plain http on 127.0.0.1
    "INGEST_RATE_LIMIT_PER_MINUTE": "1000000000",
}
TICK = os.sysconf("SC_CLK_TCK")
FEATURES = ["chat", "rag", "summary", "classify", "review"]
MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-3-5-haiku-latest")]
# 100 routes, and a status mix with rate limiting and server errors, as a busy API has.
ENDPOINTS = [f"/v1/route-{n}" for n in range(100)]
STATUSES = [200] * 90 + [400] * 2 + [429] * 5 + [500, 502, 503]


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, capture_output=True, text=True).stdout


TAGS = {"customer_tier": 50, "prompt_version": 1000}  # key: distinct values


def prepare(tag_keys: int) -> tuple[str, str]:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    subprocess.run(["redis-cli", "-n", REDIS_DB, "flushdb"], check=True, capture_output=True)
    py = str(BIN / "python")
    sh(py, "manage.py", "migrate", "-v", "0")
    sh(py, "manage.py", "create_tenant", "bench")
    sh(py, "manage.py", "create_team", "bench", "search")
    sh(py, "manage.py", "set_tag_dimensions", "bench", *list(TAGS)[:tag_keys])
    ingest = (
        sh(py, "manage.py", "create_api_key", "bench", "--team", "search").strip().splitlines()[-1]
    )
    read = (
        sh(py, "manage.py", "create_api_key", "bench", "--scope", "read").strip().splitlines()[-1]
    )
    return ingest, read


def event(rng: random.Random, feature: str | None = None) -> dict[str, object]:
    provider, model = rng.choice(MODELS)
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).isoformat(),
        "provider": provider,
        "model": model,
        "input_tokens": rng.randint(200, 4000),
        "output_tokens": rng.randint(20, 800),
        "feature": feature or rng.choice(FEATURES),
        "user_id": f"u{rng.randint(1, 5000)}",
        "latency_ms": rng.randint(100, 4000),
        "endpoint": rng.choice(ENDPOINTS),
        "status_code": rng.choice(STATUSES),
        "tags": {key: f"v{rng.randrange(values)}" for key, values in TAGS.items()},
    }


def loader(port: int, key: str, seconds: float, rate: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    rng = random.Random(os.getpid())
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent, started = 0, time.monotonic()
    while (now := time.monotonic()) - started < seconds:
        if rate and sent / rate > now - started:
            time.sleep(min(0.01, sent / rate - (now - started)))
            continue
        body = json.dumps({"events": [event(rng) for _ in range(100)]})
        conn.request("POST", "/api/v1/events", body, headers)
        response = conn.getresponse()
        accepted = json.loads(response.read())["accepted"]
        sent += accepted
    out.put(sent)


def probe(port: int, key: str, read: str, seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Every 0.5 s: one event with a feature of its own; time until the usage API shows it."""
    rng = random.Random(1)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    waits, pending, n, started = [], {}, 0, time.monotonic()
    next_probe = started
    while time.monotonic() - started < seconds + 15 and (
        pending or time.monotonic() - started < seconds
    ):
        now = time.monotonic()
        if now >= next_probe and now - started < seconds:
            n += 1
            feature = f"probe-{n}"
            body = json.dumps(event(rng, feature))
            conn.request(
                "POST",
                "/api/v1/events",
                body,
                {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            conn.getresponse().read()
            pending[feature] = time.monotonic()
            next_probe = now + 0.5
        conn.request(
            "GET",
            "/api/v1/usage?group_by=feature&granularity=hour",
            headers={"Authorization": f"Bearer {read}"},
        )
        seen = {row["feature"] for row in json.loads(conn.getresponse().read())["rows"]}
        for feature in [f for f in pending if f in seen]:
            waits.append(time.monotonic() - pending.pop(feature))
        time.sleep(0.1)
    out.put((waits, len(pending)))


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (web and celery fork workers)."""
    total = 0.0
    pids = [pid] + [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        except (FileNotFoundError, IndexError):
            pass
    return total


def backend_cpu(app: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving connections named `app` to our scratch
    database (another checkout's benchmark names its connections the same)."""
    out = sh(
        "psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-Atc",
        f"SELECT pid FROM pg_stat_activity WHERE application_name = '{app}' AND datname = '{DB}'",
    )  # fmt: skip
    cpu = {}
    for pid in map(int, out.split()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu[pid] = (int(fields[11]) + int(fields[12])) / TICK
        except (FileNotFoundError, IndexError):
            pass
    return cpu


class BackendMeter(threading.Thread):
    """Samples the CPU of named backends every 0.2 s, so short-lived connections count too."""

    def __init__(self, app: str) -> None:
        super().__init__(daemon=True)
        self.app, self.first, self.last, self.running = app, backend_cpu(app), {}, True

    def run(self) -> None:
        while self.running:
            self.last.update(backend_cpu(self.app))
            time.sleep(0.2)

    def stop(self) -> float:
        self.running = False
        self.join()
        self.last.update(backend_cpu(self.app))
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def settle(*pids: int, quiet: float = 0.05, most: float = 90) -> None:
    """Wait until the processes have started (their CPU stops climbing): Django's imports and
    Celery's fork take several CPU-seconds on a busy machine, which is neither ingest nor
    rollup work and must not be counted as either."""
    last, deadline = [tree_cpu(p) for p in pids], time.monotonic() + most
    while time.monotonic() < deadline:
        time.sleep(1)
        now = [tree_cpu(p) for p in pids]
        if all(b - a < quiet for a, b in zip(last, now, strict=True)):
            return
        last = now


def named(app: str) -> dict[str, str]:
    """The environment with database connections named `app` (pg_stat_activity)."""
    return {**ENV, "DATABASE_URL": f"{ENV['DATABASE_URL']}?application_name={app}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0, help="total events/s, 0 = unthrottled")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument(
        "--debounce", type=int, help="ROLLUP_DEBOUNCE_SECONDS (default: the setting's default)"
    )
    parser.add_argument("--tag-keys", type=int, default=0, choices=range(len(TAGS) + 1))
    args = parser.parse_args()
    if args.debounce is not None:
        ENV["ROLLUP_DEBOUNCE_SECONDS"] = str(args.debounce)
    print("preparing a scratch database ...")
    ingest_key, read_key = prepare(args.tag_keys)
    port = 19000 + os.getpid() % 1000
    web = subprocess.Popen(
        [
            str(BIN / "python"),
            "-m",
            "costboard.serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=named("bench-web"),
    )
    worker = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "costboard",
            "worker",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=named("bench-rollup"),
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        settle(web.pid, worker.pid)
        web_cpu0, worker_cpu0, t0 = tree_cpu(web.pid), tree_cpu(worker.pid), time.monotonic()
        web_pg, worker_pg = BackendMeter("bench-web"), BackendMeter("bench-rollup")
        web_pg.start()
        worker_pg.start()
        queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        per_client = args.rate / args.clients if args.rate else 0
        loaders = [
            multiprocessing.Process(
                target=loader, args=(port, ingest_key, args.seconds, per_client, queue)
            )
            for _ in range(args.clients)
        ]
        prober = multiprocessing.Process(
            target=probe, args=(port, ingest_key, read_key, args.seconds, queue)
        )
        for p in [*loaders, prober]:
            p.start()
        results = [queue.get() for _ in range(len(loaders) + 1)]
        wall = time.monotonic() - t0
        web_cpu, worker_cpu = tree_cpu(web.pid) - web_cpu0, tree_cpu(worker.pid) - worker_cpu0
        web_db, worker_db = web_pg.stop(), worker_pg.stop()
        for p in [*loaders, prober]:
            p.join()
    finally:
        web.terminate()
        worker.terminate()
        web.wait()
        worker.wait()
    (waits, lost), ingested = (
        next(r for r in results if isinstance(r, tuple)),
        sum(r for r in results if isinstance(r, int)),
    )
    waits.sort()
    p95 = (
        statistics.quantiles(waits, n=20)[18]
        if len(waits) >= 20
        else max(waits, default=float("nan"))
    )
    print(
        f"ingest: {ingested:,} events in {args.seconds:.0f}s = {ingested / args.seconds:,.0f} events/s "
        f"({args.clients} clients, {args.workers} web workers, 1 Celery worker, {os.cpu_count()} cores, "
        f"debounce {ENV.get('ROLLUP_DEBOUNCE_SECONDS', 'default')}, {args.tag_keys} tag keys)"
    )
    print(
        f"freshness (202 -> visible in /api/v1/usage): p50 {statistics.median(waits):.2f}s  p95 {p95:.2f}s  "
        f"max {waits[-1]:.2f}s over {len(waits)} probes, {lost} never seen"
    )
    print(
        f"rollup: {ingested / max(worker_cpu, 1e-9):,.0f} events per CPU-second of the worker; "
        f"worker CPU {worker_cpu:.1f}s vs web CPU {web_cpu:.1f}s over {wall:.0f}s = {worker_cpu / web_cpu:.1%}"
    )
    rollup_all, ingest_all = worker_cpu + worker_db, web_cpu + web_db
    print(
        f"with PostgreSQL: rollup {worker_cpu:.1f}s worker + {worker_db:.1f}s database = "
        f"{rollup_all:.1f}s vs ingest {web_cpu:.1f}s web + {web_db:.1f}s database = "
        f"{ingest_all:.1f}s: {rollup_all / ingest_all:.1%}"
    )
    print(
        f"targets: freshness p95 <= 10 s {'PASS' if p95 <= 10 else 'FAIL'}; "
        f"rollup CPU <= 10% of ingest CPU (with the database's share) "
        f"{'PASS' if rollup_all <= 0.1 * ingest_all else 'FAIL'}"
    )


if __name__ == "__main__":
    sys.exit(main())
