"""Benchmark: GET /api/v1/budgets/status under concurrent load through the production web server.

    .venv/bin/python bench/budgets.py [--seconds 15] [--clients 8] [--workers 2]

Builds a scratch PostgreSQL database with a tenant, 20 team budgets and a month of hourly
rollups, then has several client processes poll the status endpoint the way a gateway would
(before every LLM call) and prints requests/s and latency percentiles. Target: p95 <= 10 ms.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "costboard_bench_budgets"
ENV = {
    **os.environ,
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
    "REDIS_URL": "redis://127.0.0.1:6379/5",
    "SECRET_KEY": "bench-secret",
    "COSTBOARD_PLAIN_HTTP": "1",  # plain http on 127.0.0.1
    "INGEST_RATE_LIMIT_PER_MINUTE": "100000000",
}
PY = str(ROOT / ".venv" / "bin" / "python")
TEAMS = 20

SETUP = f"""
import datetime as dt, decimal, random
from django.utils import timezone
from tenants.services import create_tenant, create_team, create_api_key
from tenants.models import Scope
from budgets.services import set_budget, evaluate_and_alert
from rollups.models import HourlyRollup
tenant = create_tenant("bench")
now = timezone.now().replace(minute=0, second=0, microsecond=0)
rows = []
for i in range({TEAMS}):
    team = create_team(tenant, f"team-{{i}}")
    budget, _ = set_budget(tenant, amount=decimal.Decimal(1000 + i), team=team)
    for h in range(24 * 30):
        for feature in ("chat", "rag", "summary"):
            rows.append(HourlyRollup(tenant=tenant, hour=now - dt.timedelta(hours=h), team_pk=team.pk,
                feature=feature, provider="openai", model="gpt-4o-mini", environment="production",
                requests=100, cost_usd=decimal.Decimal("0.37")))
HourlyRollup.objects.for_tenant(tenant).bulk_create(rows, batch_size=5000)
from budgets.models import Budget
for b in Budget.objects.for_tenant(tenant).select_related("tenant"):
    evaluate_and_alert(b, fire=False)
_, key = create_api_key(tenant, scope=Scope.READ, name="gateway")
print(key)
"""


def run(cmd: list[str], **kw) -> str:  # type: ignore[no-untyped-def]
    return subprocess.run(
        cmd, cwd=ROOT, env=ENV, check=True, capture_output=True, text=True, **kw
    ).stdout


def prepare() -> str:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    run([PY, "manage.py", "migrate", "-v", "0"])
    return run([PY, "manage.py", "shell", "-c", SETUP]).strip().splitlines()[-1]


def client(port: int, key: str, seconds: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {key}"}
    latencies, deadline, n = [], time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        team = f"team-{n % TEAMS}"
        started = time.perf_counter()
        conn.request("GET", f"/api/v1/budgets/status?team={team}", headers=headers)
        response = conn.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - started)
        assert response.status == 200 and b"limit_usd" in body, body[:200]
        n += 1
    queue.put(latencies)


def wait_ready(port: int, timeout: float = 60) -> None:
    """Until a worker answers (booting one takes seconds on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                time.sleep(2)  # the other workers boot too
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the web server did not answer")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print("preparing a scratch database with 20 budgets and 30 days of hourly rollups ...")
    key = prepare()
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), "-m", "costboard.serve", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--log-level", "warning"],
        cwd=ROOT, env=ENV,
    )  # fmt: skip
    try:
        wait_ready(port)
        queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        procs = [
            multiprocessing.Process(target=client, args=(port, key, 2, queue)) for _ in range(2)
        ]
        [p.start() for p in procs]  # warm-up
        [queue.get() for _ in procs]
        procs = [
            multiprocessing.Process(target=client, args=(port, key, args.seconds, queue))
            for _ in range(args.clients)
        ]
        [p.start() for p in procs]
        latencies = sorted(x for _ in procs for x in queue.get())
        [p.join() for p in procs]
    finally:
        server.terminate()
        server.wait()
    q = statistics.quantiles(latencies, n=100)
    rate = len(latencies) / args.seconds
    print(
        f"budget status: {len(latencies)} requests in {args.seconds:.0f}s from {args.clients} clients, "
        f"{args.workers} web workers on {os.cpu_count()} cores"
    )
    print(
        f"  throughput {rate:,.0f} req/s   p50 {q[49] * 1000:.2f} ms   p95 {q[94] * 1000:.2f} ms   p99 {q[98] * 1000:.2f} ms"
    )
    print(f"  target p95 <= 10 ms: {'PASS' if q[94] <= 0.010 else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
