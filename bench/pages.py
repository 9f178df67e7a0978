"""Benchmark: server-side time of every dashboard page over 10M events of rollups.

    .venv/bin/python bench/pages.py [--runs 20] [--keep]

Builds a scratch PostgreSQL database holding the rollups of 10M events over 90 days for one
tenant: 50 teams, 200 features (each owned by a team, using 3 of 30 models), two
environments, 100k end users and 60 API keys, with hour-of-day and weekday seasonality. The
rows are written server-side with generate_series in the shapes rollups.services produces
(hourly, daily, per-consumer daily, lifetime, slices, consumer windows), then every page is requested through Django's
test client with a signed-in viewer, under several filter sets. Prints p50/p95/max per page
and the number of SQL queries. Target: p95 <= 150 ms per page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("BENCH_PAGES_DB", "costboard_bench_pages")
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}",
    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"),
    SECRET_KEY="bench-secret",
    COSTBOARD_PLAIN_HTTP="1",  # the benchmarks speak plain http on 127.0.0.1
    DJANGO_SETTINGS_MODULE="costboard.settings",
)
sys.path.insert(0, str(ROOT))
TARGET_EVENTS = 10_000_000
TEAMS, FEATURES, MODELS, USERS, KEYS, DAYS = 50, 200, 30, 100_000, 60, 90

# One row per (hour, feature, model, environment): requests follow the seasonality and add up
# to about TARGET_EVENTS; every other measure is derived from requests.
HOURLY_SQL = """
WITH hours AS (
    SELECT h, (0.15 + 0.85 * greatest(0, sin(pi() * (extract(hour FROM h) - 6) / 14)))
              * (CASE WHEN extract(isodow FROM h) >= 6 THEN 0.35 ELSE 1 END) AS w
    FROM generate_series(date_trunc('hour', now()) - interval '%(days)s days',
                         date_trunc('hour', now()), interval '1 hour') h
), combos AS (
    SELECT f, m, env, t.id AS team_pk,
           (1.0 / (1 + f)) * (CASE WHEN env = 'production' THEN 0.9 ELSE 0.1 END) AS share
    FROM generate_series(0, %(features)s - 1) f
    CROSS JOIN generate_series(0, 2) k
    CROSS JOIN LATERAL (SELECT (f * 7 + k * 11) %% %(models)s AS m) mm
    CROSS JOIN unnest(ARRAY['production', 'staging']) env
    JOIN bench_teams t ON t.n = f %% %(teams)s
), scale AS (
    SELECT %(events)s / (SELECT sum(w) FROM hours) / (SELECT sum(share) FROM combos) AS s
)
INSERT INTO rollups_hourlyrollup (
    tenant_id, hour, team_pk, feature, provider, model, environment, requests, errors,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, cost_override,
    cost_catalog, cost_client, unpriced_requests, unpriced_tokens, latency_sum_ms, latency_count,
    lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11,
    tok_0, tok_1, tok_2, tok_3, tok_4, tok_5, tok_6, tok_7)
SELECT %(tenant)s, h, team_pk, 'feature-' || f, CASE WHEN m < 20 THEN 'openai' ELSE 'anthropic' END,
    'model-' || m, env, n, n / 50, n * 1500, n * 300, n * 500, 0,
    round(n * (0.0004 + m * 0.0003), 12), 0, round(n * (0.0004 + m * 0.0003), 12), 0,
    CASE WHEN m = 29 THEN n ELSE 0 END, CASE WHEN m = 29 THEN n * 1800 ELSE 0 END,
    n * 900.0, n, 0, n / 10, n / 5, n / 5, n / 5, n / 10, n - 8 * n / 10, 0, 0, 0, 0, 0,
    0, 0, n / 10, n / 5, n / 2, n - 8 * n / 10, 0, 0
FROM hours CROSS JOIN combos CROSS JOIN scale
CROSS JOIN LATERAL (SELECT floor(w * share * s * (0.8 + 0.4 * random()))::bigint AS n) x
WHERE n > 0
"""

DAILY_SQL = """
INSERT INTO rollups_dailyrollup (tenant_id, day, team_pk, feature, provider, model, environment, {m})
SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, team_pk, feature, provider, model, environment, {s}
FROM rollups_hourlyrollup GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
LIFETIME_SQL = """
INSERT INTO rollups_lifetimerollup (tenant_id, team_pk, feature, provider, model, environment, {m})
SELECT tenant_id, team_pk, feature, provider, model, environment, {s}
FROM rollups_dailyrollup GROUP BY 1, 2, 3, 4, 5, 6
"""
# Each day about a fifth of the end users are active; keys carry all the day's traffic.
CONSUMER_SQL = """
INSERT INTO rollups_consumerdailyrollup (tenant_id, day, kind, consumer, team_pk, environment,
    requests, input_tokens, output_tokens, cost_usd)
SELECT %(tenant)s, d.day, 'user', 'user-' || u, t.id, 'production', r, r * 1500, r * 300, round(r * 0.004, 12)
FROM (SELECT DISTINCT day FROM rollups_dailyrollup) d
CROSS JOIN LATERAL (SELECT u FROM generate_series(1, %(users)s) u  -- a new fifth each day
                    WHERE abs(hashtext(u || '/' || d.day)) %% 5 = 0) users
JOIN bench_teams t ON t.n = u %% %(teams)s
CROSS JOIN LATERAL (SELECT 1 + floor(20 * random() / (1 + u / 5000.0))::bigint AS r) x
UNION ALL
SELECT %(tenant)s, day, 'key', ((SELECT min(id) FROM tenants_apikey) + k)::text, team_pk, environment,
       sum(requests) / %(keys)s, sum(input_tokens) / %(keys)s, sum(output_tokens) / %(keys)s,
       sum(cost_usd) / %(keys)s
FROM rollups_dailyrollup CROSS JOIN generate_series(0, %(keys)s - 1) k
WHERE team_pk = (SELECT id FROM bench_teams WHERE n = k %% %(teams)s)
GROUP BY day, k, team_pk, environment
"""

PAGES = [
    "/",
    "/?range=7d",
    "/?range=24h",
    "/?range=mtd&stack=feature",
    "/?range=last_month&stack=model",
    "/?range=30d&team=team-07",
    "/?range=30d&environment=staging&model=model-3",
    "/teams/",
    "/teams/team-07/",
    "/teams/team-07/?range=7d",
    "/features/",
    "/features/?range=7d&team=team-03",
    "/models/",
    "/models/?range=mtd",
    "/consumers/",
    "/consumers/?range=7d&team=team-03",
    "/budgets/",
    "/anomalies/",
    "/whatif/",
    "/whatif/?range=7d&feature=feature-10&models=openai/gpt-4o,google/gemini-1.5-pro",
    "/whatif/?range=mtd&team=team-07",
    "/whatif/?range=last_month",
]


def measures() -> tuple[str, str]:
    from rollups.services import MEASURES

    return ", ".join(MEASURES), ", ".join(f"sum({m})" for m in MEASURES)


def build() -> None:
    from django.core.management import call_command
    from django.db import connection

    from rollups.services import refresh_consumer_windows
    from rollups.sql import rebuild_slices
    from tenants.models import Role, Scope
    from tenants.services import add_member, create_api_key, create_team, create_tenant

    call_command("migrate", verbosity=0)
    tenant = create_tenant("bench", "Bench Corp")
    add_member(tenant, "viewer", Role.VIEWER, "bench-password")
    teams = [
        create_team(tenant, f"team-{i:02d}", f"Team {i}", f"CC-{1000 + i}") for i in range(TEAMS)
    ]
    for i in range(KEYS):
        create_api_key(tenant, team=teams[i % TEAMS], name=f"service-{i}", scope=Scope.INGEST)
    m, s = measures()
    params = {"tenant": tenant.pk, "days": DAYS, "features": FEATURES, "models": MODELS, "teams": TEAMS,
              "events": TARGET_EVENTS, "users": USERS, "keys": KEYS}  # fmt: skip
    with connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_teams (n int, id bigint)")
        cur.executemany(
            "INSERT INTO bench_teams VALUES (%s, %s)", [(i, t.pk) for i, t in enumerate(teams)]
        )
        for name, sql in (("hourly", HOURLY_SQL), ("daily", DAILY_SQL.format(m=m, s=s)),
                          ("lifetime", LIFETIME_SQL.format(m=m, s=s)), ("consumers", CONSUMER_SQL)):  # fmt: skip
            started = time.monotonic()
            cur.execute(sql, params if "%(" in sql else None)
            print(
                f"  {name}: {cur.rowcount:,} rows in {time.monotonic() - started:.1f}s", flush=True
            )
        started = time.monotonic()
        rebuild_slices()
        print(f"  slices in {time.monotonic() - started:.1f}s", flush=True)
        started = time.monotonic()
        refresh_consumer_windows(tenant.pk)
        print(f"  consumer windows in {time.monotonic() - started:.1f}s", flush=True)
        cur.execute("SELECT sum(requests) FROM rollups_hourlyrollup")
        print(f"  events represented: {cur.fetchone()[0]:,}")
        # What autovacuum does to a settled database: statistics, hint bits, visibility map.
        cur.execute("VACUUM ANALYZE")


def time_pages(runs: int) -> list[tuple[str, list[float], int]]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    # Signed in directly: the login lockout needs a request to authenticate, and the pages
    # timed here are the same for a session however it began.
    client.force_login(User.objects.get(username="viewer"))
    results = []
    for path in PAGES:
        assert client.get(path).status_code == 200, path  # warm caches and plans
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        results.append((path, sorted(times), len(queries)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database for another run")
    parser.add_argument("--reuse", action="store_true", help="time pages on a kept database")
    args = parser.parse_args()
    if not args.reuse:
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True
        )
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    import django

    django.setup()
    if not args.reuse:
        print(f"building rollups for {TARGET_EVENTS:,} events over {DAYS} days ...", flush=True)
        build()
    results = time_pages(args.runs)
    print(f"\n{'page':<52}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'queries':>9}")
    worst = 0.0
    for path, times, queries in results:
        p95 = statistics.quantiles(times, n=20)[18]
        worst = max(worst, p95)
        print(
            f"{path:<52}{statistics.median(times) * 1000:>8.1f}{p95 * 1000:>8.1f}{times[-1] * 1000:>8.1f}{queries:>9}"
        )
    print(
        f"\nworst p95 {worst * 1000:.1f} ms; target p95 <= 150 ms per page: {'PASS' if worst <= 0.150 else 'FAIL'}"
    )
    if not args.keep and not args.reuse:
        from django.db import connections

        connections.close_all()
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True
        )


if __name__ == "__main__":
    main()
