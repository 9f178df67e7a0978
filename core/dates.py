"""Bounds on the dates, times and ranges a viewer types into a page's or the API's query string.

Every page and read endpoint parses its `from`, `to` and `month` parameters here, so none can
reach date arithmetic that overflows (a day before year 1 or after 9999), and no answer grows
with the length of a range someone typed:

- a date lies between 1970-01-01 and 9998-12-31: the next day, the next month, the period
  before a range and any UTC offset stay inside what Python and PostgreSQL can hold;
- a range spans at most 400 days (the default raw-event retention: a year and the month
  before it), and hourly figures at most 31 days (744 hours).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(9998, 12, 31)
EARLIEST = datetime.combine(EARLIEST_DAY, time(), tzinfo=UTC)
LATEST = datetime.combine(LATEST_DAY + timedelta(days=1), time(), tzinfo=UTC)  # exclusive
MAX_RANGE_DAYS = 400
MAX_RANGE = timedelta(days=MAX_RANGE_DAYS)
MAX_HOURLY_DAYS = 31
MAX_HOURLY_RANGE = timedelta(days=MAX_HOURLY_DAYS)
# A date, or a time with minutes, optional seconds and fraction, and an optional offset (UTC
# without one): what the API documents, a narrower set than Python's fromisoformat reads.
_DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
INSTANT_PATTERN = f"^{_DAY}{_TIME}$"
_INSTANT = re.compile(INSTANT_PATTERN)
BOUNDS = f"between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"


class BadDate(ValueError):
    """A parameter that is not a date or time, or lies outside the bounds; says which."""


def parse_day(raw: str) -> date:
    """A YYYY-MM-DD date within the bounds."""
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        raise BadDate(f"must be a date as YYYY-MM-DD, got {raw[:40]!r}") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise BadDate(f"must be a date {BOUNDS}, got {day.isoformat()}")
    return day


def parse_instant(raw: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 / RFC 3339 time, in UTC, within the bounds.

    The bounds are checked on the local time before it is converted: converting
    0001-01-01T00:00:00+14:00 to UTC would overflow.
    """
    try:
        if not _INSTANT.match(raw):
            raise ValueError(raw)
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise BadDate("must be a date (YYYY-MM-DD) or an RFC 3339 time") from None
    if not EARLIEST_DAY <= parsed.date() <= LATEST_DAY:
        raise BadDate(f"must be a time {BOUNDS}")
    at = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not EARLIEST <= at < LATEST:
        raise BadDate(f"must be a time {BOUNDS} (UTC)")
    return at
