#!/usr/bin/env python
"""/metrics scrape benchmark against PostgreSQL: cold (cache expired) and warm scrapes.

Run by hand from the project root (PostgreSQL on 127.0.0.1, user postgres):

    .venv/bin/python bench/metrics.py                       # the three scenarios below
    .venv/bin/python bench/metrics.py --scenarios 323x365 --runs 30

What it does:

1. drops and recreates the database `costboard_bench_metrics` and runs `manage.py migrate`;
2. per scenario, fills `rollups_dailyrollup` server-side with
   generate_series: LABEL_SETS distinct (tenant, team, provider, model) sets over 50 tenants,
   1,000 teams and 48 models, each with a row per day and feature for DAYS days, plus
   `rollups_ingestcount` per tenant and day, then `rollups_lifetimerollup` (the all-time sums
   /metrics reads, one row per label set and feature) from them; HourlyRollup stays empty;
3. scrapes /metrics through Django's test client (the whole middleware stack and view):
   cold = METRICS_CACHE_SECONDS=0, every scrape recomputes from the database (what each
   Prometheus scrape costs when the scrape interval is longer than the cache), and warm =
   served from the per-process cache; prints p50/p95/max, the series count, and where the
   cold time goes (database, building the families, rendering the text);
4. drops the database (unless --keep).

Scenarios (LABEL_SETSxDAYS): 323x90 is 323 label sets x 31 costboard_* series = about 10k
series (the issue's target: 100 ms) with 90 days of history; 323x1 the same with one day
(the scrape reads all-time rows, so history length should not matter); 10000x90 is folded by the default METRICS_MAX_SERIES=2000 into
2,001 label sets (about 62k series: the most a default configuration ever exposes).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# `bench/metrics.py` would shadow the app's `metrics` package: put the project root first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(ROOT))

DB_NAME = "costboard_bench_metrics"
PG = "postgresql://postgres@127.0.0.1:5432"
TARGET_MS = 100.0
BENCH_TOKEN = "bench-metrics-token"
TENANTS, TEAMS_PER_TENANT = 50, 20
PROVIDERS = ("openai", "anthropic", "google", "azure", "bedrock", "mistral")
MODELS_PER_PROVIDER = 8
FEATURES = ("chat", "search")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def drop_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def setup_django() -> None:
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("COSTBOARD_PLAIN_HTTP", "1")
    os.environ["METRICS_TOKEN"] = BENCH_TOKEN  # the operator's scrape, as Prometheus makes it
    os.environ["DJANGO_SETTINGS_MODULE"] = "costboard.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def create_tenants_and_teams() -> list[tuple[int, int]]:
    """50 tenants x 20 teams; returns (tenant_id, team_pk) pairs."""
    from tenants.models import Team, Tenant

    tenants = Tenant.objects.bulk_create(
        [Tenant(slug=f"tenant-{i:02d}", name=f"Tenant {i}") for i in range(TENANTS)]
    )
    # A benchmark fixture spanning every tenant: no single tenant applies.
    teams = Team.unscoped_all_tenants.bulk_create(
        [
            Team(tenant=t, slug=f"team-{j:02d}", name=f"Team {j}")
            for t in tenants
            for j in range(TEAMS_PER_TENANT)
        ]
    )
    return [(team.tenant_id, team.pk) for team in teams]


def label_sets(teams: list[tuple[int, int]], count: int) -> list[tuple[Any, ...]]:
    models = [(p, f"{p}-model-{k}") for p in PROVIDERS for k in range(MODELS_PER_PROVIDER)]
    combos = [(t, team, p, m) for t, team in teams for p, m in models]
    rng = random.Random(7)
    picked = rng.sample(combos, count)
    # A per-set price factor spread over 3 orders of magnitude, so ranking by cost matters.
    return [(*s, round(10 ** rng.uniform(-5, -2), 8)) for s in picked]


FILL_SQL = """
INSERT INTO rollups_dailyrollup (
    tenant_id, day, team_pk, feature, provider, model, environment,
    requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    cost_usd, cost_override, cost_catalog, cost_client, unpriced_requests, unpriced_tokens,
    latency_sum_ms, latency_count,
    lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11,
    tok_0, tok_1, tok_2, tok_3, tok_4, tok_5, tok_6, tok_7)
SELECT s.tenant_id, d.day::date, s.team_pk, f.feature, s.provider, s.model, 'production',
    r.n, r.n / 100, r.n * 900, r.n * 250, r.n * 200, r.n * 10,
    round(r.n * s.price, 12), 0, round(r.n * s.price, 12), 0, 0, 0,
    r.n * 850.0, r.n / 20 + r.n / 5 + r.n / 4 + r.n / 5 + r.n / 10 + r.n / 20 + r.n / 50,
    r.n / 20, r.n / 5, r.n / 4, r.n / 5, r.n / 10, r.n / 20, r.n / 50, 0, 0, 0, 0, 0,
    r.n / 10, r.n / 10, r.n / 5, r.n / 5, r.n / 5, r.n / 10, r.n / 20, r.n / 20
FROM bench_sets s
CROSS JOIN generate_series(current_date - %(days)s + 1, current_date, interval '1 day') d(day)
CROSS JOIN unnest(%(features)s::text[]) f(feature)
CROSS JOIN LATERAL (
    SELECT 1 + abs(hashtext(s.model || s.team_pk || d.day::text || f.feature)) %% 2000 AS n
) r
"""

_KEYS = "tenant_id, team_pk, feature, provider, model, environment"
_MEASURES = (
    "requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
    "cost_usd, cost_override, cost_catalog, cost_client, unpriced_requests, unpriced_tokens, "
    "latency_sum_ms, latency_count, "
    + ", ".join(f"lat_{i}" for i in range(12))
    + ", "
    + ", ".join(f"tok_{i}" for i in range(8))
)
LIFETIME_SQL = (
    f"INSERT INTO rollups_lifetimerollup ({_KEYS}, {_MEASURES}) "
    f"SELECT {_KEYS}, {', '.join(f'SUM({m.strip()})' for m in _MEASURES.split(','))} "
    f"FROM rollups_dailyrollup GROUP BY {_KEYS}"
)

INGEST_SQL = """
INSERT INTO rollups_ingestcount (tenant_id, day, accepted, duplicates, rejected)
SELECT t.id, d.day::date, 100000, 120, 35
FROM tenants_tenant t
CROSS JOIN generate_series(current_date - %(days)s + 1, current_date, interval '1 day') d(day)
"""


def fill(sets: list[tuple[Any, ...]], days: int) -> int:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("TRUNCATE rollups_dailyrollup, rollups_lifetimerollup, rollups_ingestcount")
        cur.execute(
            "CREATE TEMP TABLE bench_sets (tenant_id bigint, team_pk bigint, provider text, "
            "model text, price numeric) ON COMMIT DROP"
        )
        cur.executemany("INSERT INTO bench_sets VALUES (%s, %s, %s, %s, %s)", sets)
        cur.execute(FILL_SQL, {"days": days, "features": list(FEATURES)})
        rows = cur.rowcount
        cur.execute(LIFETIME_SQL)  # what rollups.services keeps alongside the daily rows
        cur.execute(INGEST_SQL, {"days": days})
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE rollups_dailyrollup")
        cur.execute("VACUUM ANALYZE rollups_lifetimerollup")
        cur.execute("VACUUM ANALYZE rollups_ingestcount")
    return rows


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def scrape_once() -> bytes:
    from django.test import Client

    response = Client().get("/metrics", headers={"Authorization": f"Bearer {BENCH_TOKEN}"})
    assert response.status_code == 200, response.status_code
    return response.content


def breakdown(runs: int) -> dict[str, float]:
    """Median ms of the cold path's parts: the GROUP BY, building families, rendering."""
    from metrics import selectors
    from metrics.collector import build_families, render_text
    from metrics.conf import metrics_settings

    conf = metrics_settings()
    query, _ = timed(lambda: selectors.usage_by_labels(conf.labels), runs)
    build, families = timed(lambda: build_families(conf), runs)
    render, _ = timed(lambda: render_text(families), runs)
    return {
        "usage GROUP BY + merge": statistics.median(query),
        "all families (all queries)": statistics.median(build),
        "render text": statistics.median(render),
    }


def run_scenario(teams: list[tuple[int, int]], count: int, days: int, runs: int) -> dict:
    from django.test.utils import override_settings

    sets = label_sets(teams, count)
    start = time.perf_counter()
    rows = fill(sets, days)
    took = time.perf_counter() - start
    log(f"{count:,} label sets x {days} days: {rows:,} daily rollup rows in {took:.1f} s")
    with override_settings(METRICS_CACHE_SECONDS=0):
        scrape_once()  # warms connections and the database's buffers
        cold, body = timed(scrape_once, runs)
        parts = breakdown(max(3, runs // 5))
    with override_settings(METRICS_CACHE_SECONDS=3600):
        scrape_once()  # fills the cache
        warm, _ = timed(scrape_once, runs)
    text = body.decode()
    series = sum(1 for line in text.splitlines() if line.startswith("costboard_"))
    return {
        "label_sets": count,
        "days": days,
        "rows": rows,
        "series": series,
        "bytes": len(body),
        "cold": cold,
        "warm": warm,
        "parts": parts,
    }


def report(results: list[dict]) -> None:
    print()
    print(f"/metrics scrape through Django's test client, target <= {TARGET_MS:.0f} ms")
    header = (
        f"{'label sets':>10} {'days':>5} {'rollup rows':>12} {'costboard series':>17} {'body':>9}"
    )
    header += f" {'cold p50':>9} {'cold p95':>9} {'warm p50':>9} {'warm p95':>9}"
    print(header)
    for r in results:
        print(
            f"{r['label_sets']:>10,} {r['days']:>5} {r['rows']:>12,} {r['series']:>17,} "
            f"{r['bytes'] / 1024:>7.0f}KB "
            f"{pct(r['cold'], 50):>7.1f}ms {pct(r['cold'], 95):>7.1f}ms "
            f"{pct(r['warm'], 50):>7.1f}ms {pct(r['warm'], 95):>7.1f}ms"
        )
    for r in results:
        parts = ", ".join(f"{k} {v:.1f} ms" for k, v in r["parts"].items())
        print(f"  cold parts, {r['label_sets']:,}x{r['days']}: {parts}")
    for r in results:
        verdict = "PASS" if pct(r["cold"], 95) <= TARGET_MS else "FAIL"
        warm = "PASS" if pct(r["warm"], 95) <= TARGET_MS else "FAIL"
        print(
            f"  {r['label_sets']:,}x{r['days']} ({r['series']:,} series): cold p95 {verdict}, "
            f"warm p95 {warm} "
            f"(target {TARGET_MS:.0f} ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios", default="323x90,323x1,10000x90", help="LABEL_SETSxDAYS, comma-separated"
    )
    parser.add_argument("--runs", type=int, default=30, help="scrapes per measurement")
    parser.add_argument("--keep", action="store_true", help=f"keep the {DB_NAME} database")
    args = parser.parse_args()

    log(f"recreating {DB_NAME} and migrating")
    recreate_database()
    try:
        setup_django()
        teams = create_tenants_and_teams()
        scenarios = [tuple(int(n) for n in sc.split("x")) for sc in args.scenarios.split(",")]
        results = [run_scenario(teams, sets, days, args.runs) for sets, days in scenarios]
        report(results)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
