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

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


class BadMonth(ValueError):
    """A month that is not YYYY-MM."""


def parse_month(raw: str) -> date:
    match = MONTH_RE.match(raw.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise BadMonth(f"a month must be YYYY-MM (e.g. 2026-10), got {raw!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


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
