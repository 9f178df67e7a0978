"""Benchmark: a month's chargeback read from hourly rollups only vs whole UTC days + edge hours.

Fills `BENCH_MONTH_DB` (default costboard_bench_month) with 35 days of hourly rollups carrying
endpoint and status (ROWS_PER_HOUR rows an hour) and the daily rollups derived from them, then
times `month_usage` both ways and the whole `chargeback` selector, in UTC and Asia/Kolkata.
Usage: .venv/bin/python bench/month_reads.py [--build]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("BENCH_MONTH_DB", "costboard_bench_month")
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}",
    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"),
    SECRET_KEY="bench-secret",
    DJANGO_SETTINGS_MODULE="costboard.settings",
)
sys.path.insert(0, str(ROOT))
ROWS_PER_HOUR = int(os.environ.get("BENCH_ROWS_PER_HOUR", "3000"))
MONTH = date(2026, 10, 1)
HOURLY_SQL = """
INSERT INTO rollups_hourlyrollup (tenant_id, hour, team_pk, feature, provider, model, environment,
    endpoint, status, requests, input_tokens, output_tokens, cost_usd, {zeros})
SELECT %(tenant)s, h, r %% 50, 'feature-' || (r / 100), 'openai', 'model-' || (r %% 7),
    'production', '/v1/endpoint-' || (r %% 100), (ARRAY['2xx','4xx','429','5xx'])[1 + r %% 4],
    1 + r %% 13, 1000 + r, 300 + r, round((0.0004 + (r %% 7) * 0.0003) * (1 + r %% 13), 12),
    {zero_values}
FROM generate_series(timestamptz '2026-09-28 00:00Z', timestamptz '2026-11-02 23:00Z',
                     interval '1 hour') h
CROSS JOIN generate_series(0, %(rows)s - 1) r
"""
DAILY_SQL = """
INSERT INTO rollups_dailyrollup (tenant_id, day, team_pk, feature, provider, model, environment,
    endpoint, status, {m})
SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, team_pk, feature, provider, model,
    environment, endpoint, status, {s}
FROM rollups_hourlyrollup GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""


def build() -> None:
    from django.core.management import call_command
    from django.db import connection

    from tenants.services import create_tenant

    call_command("migrate", verbosity=0)
    from rollups.services import MEASURES

    tenant = create_tenant("bench", "Bench Corp")
    set_ = ("requests", "input_tokens", "output_tokens", "cost_usd")
    zeros = [m for m in MEASURES if m not in set_]
    hourly = HOURLY_SQL.format(zeros=", ".join(zeros), zero_values=", ".join("0" for _ in zeros))
    daily = DAILY_SQL.format(m=", ".join(MEASURES), s=", ".join(f"sum({m})" for m in MEASURES))
    with connection.cursor() as cur:
        for name, sql in (("hourly", hourly), ("daily", daily)):
            started = time.monotonic()
            cur.execute(sql, {"tenant": tenant.pk, "rows": ROWS_PER_HOUR})
            print(f"  {name}: {cur.rowcount:,} rows in {time.monotonic() - started:.1f}s")
        cur.execute("VACUUM ANALYZE")


def hourly_only(tenant: Any, tz: str) -> int:
    """The read before: every hour of the month."""
    from django.db.models import Sum

    from billing import months, selectors
    from rollups.models import HourlyRollup

    start, end = months.window(MONTH, tz)
    rows = HourlyRollup.objects.for_tenant(tenant).filter(hour__gte=start, hour__lt=end)
    sums = {f"s_{n}": Sum(n) for n in selectors.MEASURES}
    return len(list(rows.values(*selectors.GROUP).annotate(**sums).order_by(*selectors.GROUP)))


def timed(fn: object, runs: int = 7) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[-1]


def main() -> None:
    import django

    django.setup()
    if "--build" in sys.argv:
        build()
    from billing import selectors
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug="bench")
    for tz in ("UTC", "Asia/Kolkata"):
        cases = {
            "month_usage, hourly only (before)": lambda tz=tz: hourly_only(tenant, tz),
            "month_usage, days + edge hours": lambda tz=tz: selectors.month_usage(
                tenant, MONTH, tz
            ),
            "filter_choices": lambda tz=tz: selectors.filter_choices(tenant, MONTH, tz),
            "chargeback (two months)": lambda: selectors.chargeback(tenant, MONTH),
        }
        for name, fn in cases.items():
            median, worst = timed(fn)
            print(f"{tz:13} {name:36} median {median:8.1f} ms  max {worst:8.1f} ms")


if __name__ == "__main__":
    main()
