"""Backtest the spend forecast on the demo tenant's seeded data.

    COSTBOARD_VAR_DIR=/tmp/forecast .venv/bin/python bench/forecast.py

Seeds the demo tenant if it is missing (on the embedded PostgreSQL by default), then for each of the last 14 days
as a cut-off, forecasts the following 7 days of spend from the days before the cut-off only
(weekday profile, as budgets use it) and compares with what was actually spent. Prints each
cut-off, the mean absolute percentage error, and the same for a plain daily-average forecast.
"""

from __future__ import annotations

import os
import statistics
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costboard.settings")
os.environ.setdefault("SECRET_KEY", "bench-forecast")
os.environ.setdefault("COSTBOARD_PLAIN_HTTP", "1")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db.models import Sum  # noqa: E402

from rollups.forecast import forecast_period_end  # noqa: E402
from rollups.models import DailyRollup  # noqa: E402
from tenants.models import Tenant  # noqa: E402

HORIZON = 7


def main() -> None:
    call_command("migrate", verbosity=0)
    if not Tenant.objects.filter(slug="acme").exists():
        call_command("seed_demo")
    tenant = Tenant.objects.get(slug="acme")
    rows = DailyRollup.objects.for_tenant(tenant).values("day").annotate(c=Sum("cost_usd"))
    daily = {r["day"]: r["c"] for r in rows}
    last = max(daily) - timedelta(days=1)  # today is partial: leave it out
    errors, naive_errors = [], []
    print(f"{'cut-off':<12}{'forecast':>12}{'actual':>12}{'error':>9}{'plain avg':>12}")
    for back in range(HORIZON + 13, HORIZON - 1, -1):
        cutoff = last - timedelta(days=back - 1)
        end = cutoff + timedelta(days=HORIZON - 1)
        known = {d: v for d, v in daily.items() if d < cutoff}
        forecast = forecast_period_end(known, cutoff, end, Decimal(0))
        actual = sum(
            (daily.get(cutoff + timedelta(days=i), Decimal(0)) for i in range(HORIZON)), Decimal(0)
        )
        recent = [known[d] for d in sorted(known)[-14:]]
        naive = sum(recent, Decimal(0)) / len(recent) * HORIZON
        errors.append(abs(forecast - actual) / actual)
        naive_errors.append(abs(naive - actual) / actual)
        print(f"{cutoff!s:<12}{forecast:>12.2f}{actual:>12.2f}{errors[-1]:>9.1%}{naive:>12.2f}")
    print(
        f"7-day forecast MAPE over {len(errors)} cut-offs: weekday profile {statistics.fmean(errors):.1%}, "
        f"plain 14-day average {statistics.fmean(naive_errors):.1%}"
    )


if __name__ == "__main__":
    main()
