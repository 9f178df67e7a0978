"""Forecasts on constructed series: weekday seasonality, today's partial spend, crossings."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from rollups.forecast import exceed_date, forecast_day_end, forecast_period_end

MONDAY = date(2026, 11, 2)


def _weeks(weekday: Decimal, weekend: Decimal, until: date, weeks: int = 4) -> dict[date, Decimal]:
    days = [until - timedelta(days=n) for n in range(1, weeks * 7 + 1)]
    return {d: weekend if d.weekday() >= 5 else weekday for d in days}


def test_it_forecasts_weekdays_and_weekends_differently() -> None:
    today = date(2026, 11, 26)  # a Thursday; Nov 27-30 are Fri, Sat, Sun, Mon
    daily = _weeks(Decimal(100), Decimal(10), today)
    forecast = forecast_period_end(daily, today, date(2026, 11, 30), Decimal(1000))
    # today 100 + Fri 100 + Sat 10 + Sun 10 + Mon 100
    assert forecast == Decimal(1320)


def test_it_counts_what_today_has_already_spent() -> None:
    today = date(2026, 11, 26)
    daily = _weeks(Decimal(100), Decimal(10), today)
    daily[today] = Decimal(60)
    assert forecast_period_end(daily, today, today, Decimal(500)) == Decimal(540)
    daily[today] = Decimal(250)  # already above a typical Thursday: nothing more expected
    assert forecast_period_end(daily, today, today, Decimal(500)) == Decimal(500)


def test_it_falls_back_to_the_plain_average_without_history() -> None:
    today = MONDAY
    daily = {MONDAY - timedelta(days=1): Decimal(30), MONDAY: Decimal(0)}
    # With a single day of history, Monday's weekday average is unknown: use the mean (15).
    assert forecast_period_end(daily, today, today + timedelta(days=1), Decimal(30)) == Decimal(60)


def test_it_finds_the_day_the_budget_will_be_exceeded() -> None:
    today = date(2026, 11, 26)
    daily = _weeks(Decimal(100), Decimal(10), today)
    assert exceed_date(daily, today, date(2026, 11, 30), Decimal(1000), Decimal(1150)) == date(
        2026, 11, 27
    )
    assert exceed_date(daily, today, date(2026, 11, 30), Decimal(1000), Decimal(5000)) is None
    assert exceed_date(daily, today, date(2026, 11, 30), Decimal(2000), Decimal(1000)) == today


def test_it_forecasts_the_rest_of_the_day_by_hour() -> None:
    hourly = {h: Decimal(14) for h in range(24)}  # $1 an hour, summed over 14 days
    assert forecast_day_end(hourly, 14, now_hour=21, spent_today=Decimal(20)) == Decimal(22)


def test_it_is_not_thrown_by_one_runaway_weekend() -> None:
    today = date(2026, 11, 26)
    daily = _weeks(Decimal(100), Decimal(10), today)
    daily[date(2026, 11, 14)] = Decimal(900)  # one Saturday of a runaway loop
    saturday = date(2026, 11, 28)
    # Saturdays are still expected to cost 10, not the 235 an average would say.
    assert forecast_period_end(daily, saturday, saturday, Decimal(0)) == Decimal(10)
