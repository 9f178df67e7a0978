"""Billing months: a calendar month in the tenant's time zone, as a UTC window.

Rollups are kept per UTC hour, so a month is the hours whose start falls in
[local month start, next local month start). For a time zone with a half-hour offset the
hour that straddles local midnight is billed in the month its start falls in.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime

from django.utils import timezone

from core.dates import EARLIEST_DAY, LATEST_DAY

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


class BadMonth(ValueError):
    """A month that is not YYYY-MM, or lies outside the dates Costboard takes (core.dates)."""


def parse_month(raw: str) -> date:
    match = MONTH_RE.match(raw.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise BadMonth(f"a month must be YYYY-MM (e.g. 2026-10), got {raw[:40]!r}")
    year, month = int(match.group(1)), int(match.group(2))
    # The bounds keep the month before and after it, in any time zone, inside year 1..9999.
    if not EARLIEST_DAY.year <= year <= LATEST_DAY.year:
        raise BadMonth(
            f"a month must be YYYY-MM from {EARLIEST_DAY:%Y-%m} to {LATEST_DAY:%Y-%m}, got {raw!r}"
        )
    return date(year, month, 1)


def label(month: date) -> str:
    return f"{month:%Y-%m}"


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def local_start(month: date, tz_name: str) -> datetime:
    """The first instant of `month` in `tz_name`, in UTC."""
    local = datetime(month.year, month.month, 1, tzinfo=zoneinfo.ZoneInfo(tz_name))
    return local.astimezone(UTC)


def window(month: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start, end) of the month in UTC."""
    return local_start(month, tz_name), local_start(next_month(month), tz_name)


def current_month(tz_name: str, now: datetime | None = None) -> date:
    local = (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(tz_name))
    return date(local.year, local.month, 1)


def has_closed(month: date, tz_name: str, now: datetime | None = None) -> bool:
    """True once the whole month is over in the tenant's time zone."""
    return month < current_month(tz_name, now)


def months_between(first: date, last: date) -> list[date]:
    out: list[date] = []
    while first <= last:
        out.append(first)
        first = next_month(first)
    return out
