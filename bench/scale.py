"""Benchmark: how Costboard's costs grow with stored events, through the real ingest path.

    .venv/bin/python bench/scale.py [--stages 3000000,30000000] [--clients 3] [--runs 20]
    .venv/bin/python bench/scale.py --stages 300000 --runs 5        # a quick look

Makes a scratch database (`BENCH_SCALE_DB`, default costboard_bench_scale; Redis database 7),
starts production's web server (granian), a Celery worker and beat on it, then fills it with
events POSTed to `/api/v1/events` in batches of 100 from `--clients` processes, as fast as
they go, with a realistic mix: 50 teams, 200 features (each owned by a team), 100 endpoints
(each used by two features), 100k end users, 12 models (dated snapshots among them), a status
mix with a retry-storm share of 429s and 5xx, tags `customer_tier` and `prompt_version`, over
90 days (each stage's load walks forward through all 90 days, as a replay of real traffic
would; so at every stage the pages read full ranges, and a later stage adds density).

Throughout the fill a probe sends one event every 2 s stamped now and times until
`/api/v1/usage` shows it (freshness). At each stage (the cumulative event counts of
`--stages`) the load pauses until every batch is rolled up, and then it measures:
- every page's p50/p95 (Django's test client with a signed-in viewer, in a child process, as
  `bench/pages.py` does), directly and again through PgBouncer in transaction pooling mode;
- storage bytes per event: raw events (heap + indexes, every partition, the idempotency keys
  if any) and rollups (every `rollups_*` table);
- ingest events/s of the stage and freshness p50/p95/max.
At the end it times dropping the oldest month partition of raw events (the retention step),
when the table is partitioned. The last table puts the stages side by side: pages should stay
flat, because they read rollups whose size follows the organisation's shape, not its traffic.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
DB = os.environ.get("BENCH_SCALE_DB", "costboard_bench_scale")
REDIS_DB = os.environ.get("BENCH_SCALE_REDIS_DB", "7")
PORT = int(os.environ.get("BENCH_SCALE_PORT", "18731"))
PGBOUNCER_PORT = os.environ.get("BENCH_SCALE_PGBOUNCER_PORT", "16433")
ENV = {
    **os.environ,
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
    "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
    "SECRET_KEY": "bench-secret",
    "COSTBOARD_PLAIN_HTTP": "1",  # plain http on 127.0.0.1
    "INGEST_RATE_LIMIT_PER_MINUTE": "1000000000",
    "DJANGO_SETTINGS_MODULE": "costboard.settings",
    "LOG_LEVEL": "WARNING",
}
TEAMS, FEATURES, ENDPOINTS, USERS, DAYS = 50, 200, 100, 100_000, 90
MODELS = [
    ("openai", "gpt-4o"), ("openai", "gpt-4o-2024-08-06"), ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"), ("openai", "gpt-4.1-mini"), ("openai", "o3-mini"),
    ("anthropic", "claude-3-5-sonnet-20241022"), ("anthropic", "claude-3-5-haiku-latest"),
    ("anthropic", "claude-sonnet-4-20250514"), ("google", "gemini-2.0-flash"),
    ("google", "gemini-1.5-pro"), ("mistral", "mistral-large-latest"),
]  # fmt: skip
TIERS = ("free", "pro", "enterprise")
BATCH = 100
PAGES = [
    "/", "/?range=7d", "/?range=24h", "/?range=mtd&stack=feature", "/?range=last_month&stack=model",
    "/?range=30d&team=team-07", "/?range=30d&environment=staging&model=gpt-4o",
    "/?range=30d&endpoint=/v1/route-12", "/?range=7d&status=429",
    "/?range=30d&model_family=GPT-4o", "/?range=30d&tag.customer_tier=enterprise",
    "/endpoints/", "/statuses/", "/tags/customer_tier/", "/features/feature-3/",
    "/chargeback/?by=tag:customer_tier",
    "/teams/", "/teams/team-07/", "/teams/team-07/?range=7d", "/features/",
    "/features/?range=7d&team=team-03", "/models/", "/models/?range=mtd", "/consumers/",
    "/consumers/?range=7d&team=team-03", "/budgets/", "/anomalies/", "/whatif/",
    "/whatif/?range=mtd&team=team-07", "/prices/", "/chargeback/", "/invoices/",
]  # fmt: skip


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*cmd: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=ROOT, env=env or ENV, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({done.returncode})")
    return done.stdout


def psql(query: str) -> str:
    return sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-Atc", query).strip()


SETUP = f"""
from tenants.models import Role, Scope
from tenants.services import add_member, create_api_key, create_team, create_tenant
from rollups.tags import set_tag_dimensions
tenant = create_tenant("scale", "Scale Corp")
set_tag_dimensions(tenant, ["customer_tier"])  # a chosen key, rolled up from the first call
add_member(tenant, "viewer", Role.FINANCE, "bench-password")  # finance: billing pages too
for i in range({TEAMS}):
    create_team(tenant, f"team-{{i:02d}}", f"Team {{i}}", f"CC-{{1000 + i}}")
_, ingest = create_api_key(tenant, name="replay", scope=Scope.INGEST)
_, read = create_api_key(tenant, name="probe", scope=Scope.READ)
print(ingest)
print(read)
"""


def prepare() -> tuple[str, str]:
    sh("dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB)
    sh("createdb", "-h", "127.0.0.1", "-U", "postgres", DB)
    sh("redis-cli", "-n", REDIS_DB, "flushdb")
    sh(str(BIN / "python"), "manage.py", "migrate", "-v", "0")
    ingest, read = sh(str(BIN / "python"), "manage.py", "shell", "-c", SETUP).split()[-2:]
    return ingest, read


def event(rng: random.Random, at: datetime) -> dict[str, Any]:
    feature = min(int(rng.paretovariate(1.2)) - 1, FEATURES - 1)  # a few features dominate
    provider, model = MODELS[(feature * 7 + rng.randrange(3)) % len(MODELS)]
    roll = rng.random()
    status = 200 if roll < 0.955 else 429 if roll < 0.98 else 400 if roll < 0.99 else 503
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": at.isoformat(),
        "provider": provider,
        "model": model,
        "input_tokens": (tokens := rng.randint(200, 6000)),
        "output_tokens": rng.randint(20, 900),
        "cache_read_tokens": rng.choice((0, 0, 0, tokens // 2, tokens - 100)),
        "team": f"team-{feature % TEAMS:02d}",
        "feature": f"feature-{feature}",
        "endpoint": f"/v1/route-{(feature * 2 + rng.randrange(2)) % ENDPOINTS}",
        "environment": "production" if rng.random() < 0.9 else "staging",
        "user_id": f"user-{int(rng.paretovariate(0.8)) % USERS}",
        "latency_ms": round(rng.lognormvariate(6.5, 0.7), 1),
        "status_code": status,
        "tags": {"customer_tier": rng.choice(TIERS), "prompt_version": f"v{rng.randrange(50)}"},
    }


def loader(
    key: str, seed: int, first: int, count: int, stride: int, total: int, start: datetime, out: Any
) -> None:
    """Events first, first+stride, ... of the stage's `total`, spread over DAYS from `start`,
    100 a POST. Each stage walks through all 90 days, so every stage's pages read full ranges
    and a later stage only adds density."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    span, accepted, index = timedelta(days=DAYS) - timedelta(hours=1), 0, first
    while index < first + count * stride:
        batch = []
        for _ in range(BATCH):
            at = start + span * (index / total) + timedelta(seconds=rng.uniform(0, 60))
            batch.append(event(rng, at))
            index += stride
        conn.request("POST", "/api/v1/events", json.dumps({"events": batch}), headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 202:
            raise SystemExit(f"ingest answered {response.status}: {body[:300]!r}")
        accepted += json.loads(body)["accepted"]
    out.put(accepted)


def probe(key: str, read: str, stop: Any, out: Any) -> None:
    """Every 2 s: one event now with a feature of its own; time until the usage API shows it."""
    rng = random.Random(7)
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    waits, pending, n = [], {}, 0
    next_probe = time.monotonic()
    while not stop.is_set() or pending:
        if stop.is_set() and min(pending.values()) < time.monotonic() - 120:
            break  # reported as never seen
        if time.monotonic() >= next_probe and not stop.is_set():
            n += 1
            body = event(rng, datetime.now(UTC)) | {"feature": f"probe-{n}"}
            conn.request("POST", "/api/v1/events", json.dumps(body),
                         {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            answer = response.read()
            if response.status != 202:
                raise SystemExit(f"probe event answered {response.status}: {answer[:300]!r}")
            pending[f"probe-{n}"] = time.monotonic()
            next_probe = time.monotonic() + 2
        since = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:00:00Z")
        conn.request("GET", f"/api/v1/usage?group_by=feature&granularity=hour&from={since}",
                     headers={"Authorization": f"Bearer {read}"})  # fmt: skip
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise SystemExit(f"usage API answered {response.status}: {answer[:300]!r}")
        seen = {row["feature"] for row in json.loads(answer)["rows"]}
        for feature in [f for f in pending if f in seen]:
            waits.append(time.monotonic() - pending.pop(feature))
        time.sleep(0.25)
    out.put((waits, len(pending)))


class Processes:
    """The web server, the worker and beat; stopped on exit."""

    def __init__(self) -> None:
        py = str(BIN / "python")
        celery = [py, "-m", "celery", "-A", "costboard"]
        self.procs = [
            subprocess.Popen([py, "-m", "costboard.serve", "--bind", f"127.0.0.1:{PORT}"],
                             cwd=ROOT, env=ENV, start_new_session=True),
            subprocess.Popen([*celery, "worker", "--loglevel=WARNING", "--concurrency=1",
                              "--without-gossip", "--without-mingle"],
                             cwd=ROOT, env=ENV, start_new_session=True),
            subprocess.Popen([*celery, "beat", "--loglevel=WARNING",
                              f"--schedule=/tmp/costboard-bench-scale-beat-{os.getpid()}"],
                             cwd=ROOT, env=ENV, start_new_session=True),
        ]  # fmt: skip
        for _ in range(120):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("the web server did not start")

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
        for proc in self.procs:
            proc.wait(timeout=30)


def caught_up() -> float:
    """Wait until no batch is pending (rollups hold every event); seconds waited."""
    started = time.monotonic()
    while psql("SELECT count(*) FROM ingest_pendingbatch WHERE quarantined_at IS NULL") != "0":
        time.sleep(1)
    return time.monotonic() - started


PAGE_TIMER = """
import json, sys, time, django
django.setup()
from django.contrib.auth.models import User
from django.test import Client
client = Client()
client.force_login(User.objects.get(username="viewer"))
out = {}
for path in json.loads(sys.argv[1]):
    status = client.get(path).status_code  # warms caches and plans
    times = []
    for _ in range(int(sys.argv[2])):
        started = time.perf_counter()
        status = client.get(path).status_code
        times.append(time.perf_counter() - started)
    out[path] = [status, sorted(times)]
print(json.dumps(out))
"""


def time_pages(runs: int, pooled: bool) -> dict[str, tuple[int, float, float]]:
    env = dict(ENV)
    if pooled:
        env |= {"DATABASE_URL": f"postgres://postgres@127.0.0.1:{PGBOUNCER_PORT}/{DB}",
                "DATABASE_POOLED": "1"}  # fmt: skip
    raw = json.loads(
        sh(str(BIN / "python"), "-c", PAGE_TIMER, json.dumps(PAGES), str(runs), env=env)
    )
    return {
        path: (status, statistics.median(t) * 1000, statistics.quantiles(t, n=20)[18] * 1000)
        for path, (status, t) in raw.items()
    }


STORAGE = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname LIKE 'ingest_usageevent%%'
         OR c.relname LIKE 'ingest_eventkey%%' OR c.relname LIKE 'ingest_eventid%%'), 0),
       coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname LIKE 'rollups_%%'), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')
"""


def storage(events: int) -> tuple[float, float]:
    raw, rollups = (int(x) for x in psql(STORAGE.replace("%%", "%")).split("|"))
    return raw / events, rollups / events


def drop_oldest_partition() -> str:
    rows = psql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'ingest_usageevent' "
        "AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' "
        "ORDER BY pg_get_expr(c.relpartbound, c.oid) LIMIT 1"
    )
    if not rows:
        return "raw events are not partitioned: nothing to drop"
    count = psql(f"SELECT count(*) FROM {rows}")
    started = time.monotonic()
    psql(f"ALTER TABLE ingest_usageevent DETACH PARTITION {rows} CONCURRENTLY")
    detached = time.monotonic() - started
    psql(f"DROP TABLE {rows}")
    return (
        f"dropped {rows} ({int(count):,} events): detach {detached:.2f} s, "
        f"detach + drop {time.monotonic() - started:.2f} s"
    )


def fill(key: str, read: str, done: int, upto: int, clients: int, start: datetime) -> dict[str, Any]:  # fmt: skip
    out: Any = multiprocessing.Queue()
    stop = multiprocessing.Event()
    prober = multiprocessing.Process(target=probe, args=(key, read, stop, out))
    prober.start()
    count = (upto - done) // (clients * BATCH) * BATCH
    workers = [
        multiprocessing.Process(
            target=loader, args=(key, done + i, i, count, clients, upto - done, start, out)
        )
        for i in range(clients)
    ]
    started = time.monotonic()
    for w in workers:
        w.start()
    accepted = sum(out.get() for _ in workers)
    seconds = time.monotonic() - started
    stop.set()
    waits, lost = out.get()
    prober.join()
    waits.sort()
    return {
        "accepted": accepted,
        "rate": accepted / seconds,
        "fresh_p50": statistics.median(waits) if waits else float("nan"),
        "fresh_p95": statistics.quantiles(waits, n=20)[18] if len(waits) > 1 else float("nan"),
        "fresh_max": waits[-1] if waits else float("nan"),
        "never_seen": lost,
        "catch_up": caught_up(),
    }


def report(stages: list[dict[str, Any]]) -> None:
    names = [f"{s['events'] / 1e6:g}M" for s in stages]
    print("\n" + f"{'':<44}" + "".join(f"{n:>16}" for n in names))
    rows = [
        ("ingest events/s", "rate", "{:,.0f}"), ("freshness p50 s", "fresh_p50", "{:.1f}"),
        ("freshness p95 s", "fresh_p95", "{:.1f}"), ("freshness max s", "fresh_max", "{:.1f}"),
        ("probes never seen", "never_seen", "{}"), ("catch-up after load s", "catch_up", "{:.0f}"),
        ("raw event bytes/event", "raw_bytes", "{:,.0f}"), ("rollup bytes/event", "rollup_bytes", "{:,.1f}"),
    ]  # fmt: skip
    for label, key, fmt in rows:
        print(f"{label:<44}" + "".join(f"{fmt.format(s[key]):>16}" for s in stages))
    print(f"\n{'page p95 ms (direct / PgBouncer)':<44}" + "".join(f"{n:>16}" for n in names))
    worst = 0.0
    for path in PAGES:
        cells = []
        for s in stages:
            status, _, p95 = s["pages"][path]
            pooled = s["pooled"][path][2]
            worst = max(worst, p95, pooled)
            cells.append(f"{p95:.0f} / {pooled:.0f}" if status == 200 else f"HTTP {status}")
        print(f"{path[:43]:<44}" + "".join(f"{c:>16}" for c in cells))
    first, last = stages[0], stages[-1]
    ratio = statistics.median(last["pages"][p][2] / first["pages"][p][2] for p in PAGES)
    print(f"\nmedian page p95 ratio {names[-1]} / {names[0]}: {ratio:.2f} (flat = 1.0)")
    print(f"worst page p95 {worst:.0f} ms; target <= 150 ms: {'PASS' if worst <= 150 else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stages", default="3000000,30000000")
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    targets = [int(x) for x in args.stages.split(",")]
    key, read = prepare()
    log(f"database {DB} ready; filling {targets[-1]:,} events over {DAYS} days")
    start = datetime.now(UTC) - timedelta(days=DAYS)
    # A PgBouncer of its own (port and directory), beside any other of the machine.
    bouncer = dict(ENV, PGBOUNCER_PORT=PGBOUNCER_PORT, COSTBOARD_VAR_DIR="var/bench-scale")
    procs = Processes()
    stages: list[dict[str, Any]] = []
    done = 0
    try:
        sh("bash", "deploy/pgbouncer.sh", "start", env=bouncer)
        for target in targets:
            stage = fill(key, read, done, target, args.clients, start)
            done += stage["accepted"]
            stored = int(psql("SELECT count(*) FROM ingest_usageevent"))
            log(f"{stored:,} events stored ({stage['rate']:,.0f} events/s this stage); "
                f"freshness p95 {stage['fresh_p95']:.1f} s; timing pages")  # fmt: skip
            psql("ANALYZE")
            stage |= {"events": stored, "pages": time_pages(args.runs, pooled=False),
                      "pooled": time_pages(args.runs, pooled=True)}  # fmt: skip
            stage["raw_bytes"], stage["rollup_bytes"] = storage(stored)
            stages.append(stage)
        report(stages)
        log(drop_oldest_partition())
    finally:
        procs.stop()
        sh("bash", "deploy/pgbouncer.sh", "stop", env=bouncer)
        if not args.keep:
            sh("dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB)


if __name__ == "__main__":
    main()
