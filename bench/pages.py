"""Benchmark: server-side time of every dashboard page over 10M events of rollups.

    .venv/bin/python bench/pages.py [--runs 20] [--keep]

Builds a scratch PostgreSQL database holding the rollups of 10M events over 90 days for one
tenant: 50 teams, 200 features (each owned by a team, using 3 of 30 catalog models and 2 of
100 endpoints), two environments, four status classes (2xx, 4xx, 429, 5xx), 100k end users,
60 API keys, and two chosen tag keys (`segment`, 50 values; `customer`, 1,000 values, of
which each day admits the TAG_VALUES_PER_DAY default of 200 and sums the rest under
"(other)"), with hour-of-day and weekday seasonality. The rows are written server-side with
generate_series in the shapes rollups.services produces (hourly, daily, per-consumer daily,
lifetime, slices, tag rollups and slices, consumer windows), then every page is requested
through Django's test client with a signed-in viewer, under several filter sets. Prints
p50/p95/max per page and the number of SQL queries. Target: p95 <= 150 ms per page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
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
# Catalog models, so model families and the what-if's prices are real: 15 OpenAI, 8 Anthropic,
# 7 Google (the last one is left unpriced).
MODEL_NAMES = (
    "gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
    "o3-mini", "o1", "gpt-4-turbo", "gpt-3.5-turbo", "o4-mini", "gpt-4o-mini-2024-07-18",
    "gpt-4.1-2025-04-14", "o3", "gpt-4",
    "claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022", "claude-3-opus-20240229",
    "claude-3-haiku-20240307", "claude-3-7-sonnet-20250219", "claude-sonnet-4-20250514",
    "claude-opus-4-20250514", "claude-3-5-sonnet-20240620",
    "gemini-1.5-pro", "gemini-1.5-flash", "gemini-2.0-flash", "gemini-2.5-pro",
    "gemini-2.5-flash", "gemini-2.0-flash-lite", "gemini-1.5-flash-8b",
)  # fmt: skip
ENDPOINTS = 100
# Each tag key's values per rollup row: a row of n calls carries up to this many values.
SEGMENTS, CUSTOMERS, CUSTOMERS_ADMITTED = 50, 1000, 200

# One row per (hour, feature, model, environment): requests follow the seasonality and add up
# to about TARGET_EVENTS; every other measure is derived from requests.
HOURLY_SQL = """
WITH hours AS (
    SELECT h, (0.15 + 0.85 * greatest(0, sin(pi() * (extract(hour FROM h) - 6) / 14)))
              * (CASE WHEN extract(isodow FROM h) >= 6 THEN 0.35 ELSE 1 END) AS w
    FROM generate_series(date_trunc('hour', now()) - interval '%(days)s days',
                         date_trunc('hour', now()), interval '1 hour') h
), combos AS (
    SELECT f, m, env, t.id AS team_pk, '/v1/route-' || lpad(e::text, 2, '0') AS endpoint, status,
           (1.0 / (1 + f)) * (CASE WHEN env = 'production' THEN 0.9 ELSE 0.1 END)
           * eshare * sshare AS share
    FROM generate_series(0, %(features)s - 1) f
    CROSS JOIN generate_series(0, 2) k
    CROSS JOIN LATERAL (SELECT (f * 7 + k * 11) %% %(models)s AS m) mm
    CROSS JOIN unnest(ARRAY['production', 'staging']) env
    CROSS JOIN LATERAL (VALUES (f %% %(endpoints)s, 0.8),
                               ((f * 37 + 11) %% %(endpoints)s, 0.2)) ep(e, eshare)
    CROSS JOIN (VALUES ('2xx', 0.955), ('4xx', 0.02), ('429', 0.015), ('5xx', 0.01)) st(status, sshare)
    JOIN bench_teams t ON t.n = f %% %(teams)s
), scale AS (
    SELECT %(events)s / (SELECT sum(w) FROM hours) / (SELECT sum(share) FROM combos) AS s
)
INSERT INTO rollups_hourlyrollup (
    tenant_id, hour, team_pk, feature, provider, model, environment, endpoint, status, requests, errors,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, cost_override,
    cost_catalog, cost_client, unpriced_requests, unpriced_tokens, latency_sum_ms, latency_count,
    lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11,
    tok_0, tok_1, tok_2, tok_3, tok_4, tok_5, tok_6, tok_7)
SELECT %(tenant)s, h, team_pk, 'feature-' || f,
    CASE WHEN m < 15 THEN 'openai' WHEN m < 23 THEN 'anthropic' ELSE 'google' END,
    (%(model_names)s::text[])[m + 1], env, endpoint, status, n,
    CASE WHEN status = '2xx' THEN 0 ELSE n END, n * 1500, n * 300, n * 500, 0,
    round(n * (0.0004 + m * 0.0003), 12), 0, round(n * (0.0004 + m * 0.0003), 12), 0,
    CASE WHEN m = 29 THEN n ELSE 0 END, CASE WHEN m = 29 THEN n * 1800 ELSE 0 END,
    n * 900.0, n, 0, n / 10, n / 5, n / 5, n / 5, n / 10, n - 8 * n / 10, 0, 0, 0, 0, 0,
    0, 0, n / 10, n / 5, n / 2, n - 8 * n / 10, 0, 0
FROM hours CROSS JOIN combos CROSS JOIN scale
-- Rounded up with the probability of the fraction, so the rows add up to TARGET_EVENTS.
CROSS JOIN LATERAL (SELECT floor(w * share * s * (0.8 + 0.4 * random()) + random())::bigint AS n) x
WHERE n > 0
"""

DIMS = "team_pk, feature, provider, model, environment, endpoint, status"
DAILY_SQL = f"""
INSERT INTO rollups_dailyrollup (tenant_id, day, {DIMS}, {{m}})
SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, {DIMS}, {{s}}
FROM rollups_hourlyrollup GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""
LIFETIME_SQL = f"""
INSERT INTO rollups_lifetimerollup (tenant_id, {DIMS}, {{m}})
SELECT tenant_id, {DIMS}, {{s}}
FROM rollups_dailyrollup GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""
# Each hourly row's calls spread over up to 3 segments (fixed per feature and endpoint, so a
# segment is a customer group using some routes) and up to 4 customers drawn with a long tail;
# customers outside the day's first 200 are summed under "(other)", as the merge does.
TAG_HOURLY_SQL = f"""
INSERT INTO rollups_taghourlyrollup (tenant_id, hour, tag_key, tag_value, {DIMS}, {{m}})
SELECT tenant_id, hour, tag_key, tag_value, {DIMS}, {{s}}
FROM (
    SELECT r.*, 'segment' AS tag_key, k,
        'segment-' || lpad(((abs(hashtext(r.feature || r.endpoint)) + i * 17) %% %(segments)s)::text, 2, '0')
        AS tag_value
    FROM rollups_hourlyrollup r CROSS JOIN LATERAL (SELECT least(r.requests, 3) AS k) kk
    CROSS JOIN LATERAL generate_series(1, k) i
    UNION ALL
    SELECT r.*, 'customer', k,
        CASE WHEN c < %(admitted)s THEN 'customer-' || lpad(c::text, 4, '0') ELSE '(other)' END
    FROM rollups_hourlyrollup r CROSS JOIN LATERAL (SELECT least(r.requests, 4) AS k) kk
    CROSS JOIN LATERAL generate_series(1, k) i
    CROSS JOIN LATERAL (SELECT floor(%(customers)s * random() ^ 4 + 0 * i)::int AS c) cc
) parts GROUP BY tenant_id, hour, tag_key, tag_value, {DIMS}
"""
TAG_DAILY_SQL = f"""
INSERT INTO rollups_tagdailyrollup (tenant_id, day, tag_key, tag_value, {DIMS}, {{m}})
SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, tag_key, tag_value, {DIMS}, {{s}}
FROM rollups_taghourlyrollup GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
"""
TAG_VALUES_SQL = """
INSERT INTO rollups_tagvalue (tenant_id, day, tag_key, tag_value)
SELECT DISTINCT tenant_id, day, tag_key, tag_value FROM rollups_tagdailyrollup
WHERE tag_value NOT IN ('(other)', '')
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
    "/?range=30d&environment=staging&model=gpt-4o-mini",
    "/?range=30d&endpoint=/v1/route-07",
    "/?range=7d&status=429",
    "/?range=30d&model_family=GPT-4o",
    "/teams/",
    "/teams/team-07/",
    "/teams/team-07/?range=7d",
    "/features/",
    "/features/?range=7d&team=team-03",
    "/features/feature-10/",
    "/features/feature-10/?range=7d",
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
    "/?range=30d&stack=endpoint",
    "/?range=7d&stack=status",
    "/endpoints/",
    "/endpoints/?range=7d&team=team-07",
    "/statuses/",
    "/tags/customer/",
    "/tags/segment/?range=7d",
    "/chargeback/",
    "/chargeback/?by=tag:customer",
    # Tag filters read the key's tag rollups (customer-0007 is among the most used of the
    # long tail), and the spend chart stacked by a tag key or a model family.
    "/?range=30d&tag.customer=customer-0007",
    "/?range=7d&stack=tag:segment",
    "/?range=30d&stack=model_family",
    "/endpoints/?range=30d&tag.segment=segment-07",
]


def measures() -> tuple[str, str, str]:
    """The measure columns, their sums, and their sums split over k parts (tag values)."""
    from rollups.services import MEASURES

    split = ", ".join(f"sum({m} / k)" for m in MEASURES)
    return ", ".join(MEASURES), ", ".join(f"sum({m})" for m in MEASURES), split


def build() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from rollups.models import TagDimension
    from rollups.services import refresh_consumer_windows
    from rollups.sql import rebuild_slices, rebuild_tag_slices
    from tenants.models import Role, Scope
    from tenants.services import add_member, create_api_key, create_team, create_tenant

    call_command("migrate", verbosity=0)
    tenant = create_tenant("bench", "Bench Corp")
    add_member(tenant, "viewer", Role.FINANCE, "bench-password")  # chargeback needs Finance
    teams = [
        create_team(tenant, f"team-{i:02d}", f"Team {i}", f"CC-{1000 + i}") for i in range(TEAMS)
    ]
    for i in range(KEYS):
        create_api_key(tenant, team=teams[i % TEAMS], name=f"service-{i}", scope=Scope.INGEST)
    m, s, split = measures()
    params = {"tenant": tenant.pk, "days": DAYS, "features": FEATURES, "models": MODELS, "teams": TEAMS,
              "events": TARGET_EVENTS, "users": USERS, "keys": KEYS, "endpoints": ENDPOINTS,
              "model_names": list(MODEL_NAMES), "segments": SEGMENTS, "customers": CUSTOMERS,
              "admitted": CUSTOMERS_ADMITTED}  # fmt: skip
    first_day = (timezone.now() - timedelta(days=DAYS)).date()
    for position, key in enumerate(("segment", "customer")):
        TagDimension(
            tenant=tenant, key=key, position=position, history_from=first_day,
            chosen_at=timezone.now(),
        ).save()  # fmt: skip
    with connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_teams (n int, id bigint)")
        cur.executemany(
            "INSERT INTO bench_teams VALUES (%s, %s)", [(i, t.pk) for i, t in enumerate(teams)]
        )
        for name, sql in (("hourly", HOURLY_SQL), ("daily", DAILY_SQL.format(m=m, s=s)),
                          ("lifetime", LIFETIME_SQL.format(m=m, s=s)), ("consumers", CONSUMER_SQL),
                          ("tag hourly", TAG_HOURLY_SQL.format(m=m, s=split)),
                          ("tag daily", TAG_DAILY_SQL.format(m=m, s=s)),
                          ("tag values", TAG_VALUES_SQL)):  # fmt: skip
            started = time.monotonic()
            cur.execute(sql, params if "%(" in sql else None)
            print(
                f"  {name}: {cur.rowcount:,} rows in {time.monotonic() - started:.1f}s", flush=True
            )
        started = time.monotonic()
        rebuild_slices()
        rebuild_tag_slices()
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
