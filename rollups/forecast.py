"""Forecast period-end spend from the spend so far, with weekday seasonality."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

ZERO = Decimal(0)


def weekday_profile(daily: dict[date, Decimal], today: date, weeks: int = 4) -> dict[int, Decimal]:
    """Typical spend per weekday over the last `weeks` weeks before `today`: the median.

    The median keeps one runaway weekend from inflating every later forecast. Days with no
    usage count as zero (a quiet Sunday stays quiet); days before the first usage are unknown.
    """
    samples: dict[int, list[Decimal]] = defaultdict(list)
    first_usage = min(daily, default=today)
    for back in range(1, weeks * 7 + 1):
        day = today - timedelta(days=back)
        if day >= first_usage:
            samples[day.weekday()].append(daily.get(day, ZERO))
    return {wd: statistics.median(values) for wd, values in samples.items()}


def forecast_period_end(
    daily: dict[date, Decimal], today: date, period_end: date, spent_so_far: Decimal
) -> Decimal:
    """Spend so far + the expected spend of the rest of today and every remaining day.

    Today's expectation is its weekday average, less what today has already spent (never
    negative). With no history at all, the average of the days seen so far is used.
    """
    profile = weekday_profile(daily, today)
    fallback = _plain_average(daily, today)
    expected = ZERO
    day = today
    while day <= period_end:
        typical = profile.get(day.weekday(), fallback)
        expected += max(typical - daily.get(day, ZERO), ZERO) if day == today else typical
        day += timedelta(days=1)
    return spent_so_far + expected


def _plain_average(daily: dict[date, Decimal], today: date) -> Decimal:
    past = [v for d, v in daily.items() if d <= today]
    return sum(past, ZERO) / len(past) if past else ZERO


def exceed_date(
    daily: dict[date, Decimal], today: date, period_end: date, spent_so_far: Decimal, limit: Decimal
) -> date | None:
    """The first day the spend is expected to pass `limit` within the period, if it does."""
    if spent_so_far > limit:
        return today
    profile, fallback = weekday_profile(daily, today), _plain_average(daily, today)
    running, day = spent_so_far, today
    while day <= period_end:
        typical = profile.get(day.weekday(), fallback)
        running += max(typical - daily.get(day, ZERO), ZERO) if day == today else typical
        if running > limit:
            return day
        day += timedelta(days=1)
    return None


def forecast_day_end(
    hourly: dict[int, Decimal], days: int, now_hour: int, spent_today: Decimal
) -> Decimal:
    """Today's spend + the average spend of each remaining hour of the day over `days` days.

    `hourly` maps hour-of-day (0-23, local) to total spend at that hour over the last `days`.
    """
    if days <= 0:
        return spent_today
    rest = sum((hourly.get(h, ZERO) for h in range(now_hour + 1, 24)), ZERO) / days
    return spent_today + rest
