"""Page filters, read from and written back to the query string so a view is a shareable link."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict

from core.dates import MAX_RANGE, MAX_RANGE_DAYS, BadDate, parse_day
from core.query import text_param
from rollups import statuses

RANGES = {
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "mtd": "Month to date",
    "last_month": "Last month",
    "custom": "Custom",
}
DEFAULT_RANGE = "30d"
DIMENSION_FILTERS = (
    "environment", "team", "feature", "model", "endpoint", "status", "model_family",
)  # fmt: skip
STACKS = ("team", "feature", "model", "provider", "environment", "endpoint", "status")


@dataclass(frozen=True)
class Filters:
    range: str
    start: datetime  # inclusive
    end: datetime  # exclusive
    environment: str = ""
    team: str = ""
    feature: str = ""
    model: str = ""  # the name calls reported
    endpoint: str = ""
    status: str = ""  # a status class (rollups.statuses)
    model_family: str = ""  # pricing.families
    stack: str = "team"
    errors: tuple[str, ...] = ()

    @property
    def hourly(self) -> bool:
        """Short ranges are drawn per hour, longer ones per day."""
        return self.end - self.start <= timedelta(days=2)

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    def previous(self) -> Filters:
        """The period of the same length just before, for 'change against previous period'."""
        length = self.end - self.start
        return replace(self, start=self.start - length, end=self.start)

    def query(self, **changes: str) -> str:
        """This view's query string with some parameters changed, for links."""
        params = {"range": self.range, "stack": self.stack}
        if self.range == "custom":
            params |= {"from": self.first_day.isoformat(), "to": self.last_day.isoformat()}
        params |= {name: getattr(self, name) for name in DIMENSION_FILTERS}
        params |= changes
        return urlencode({k: v for k, v in params.items() if v})


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _window(key: str, now: datetime, params: QueryDict) -> tuple[datetime, datetime, list[str]]:
    tomorrow = _day_start(now.date() + timedelta(days=1))
    if key == "24h":
        hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return hour - timedelta(hours=24), hour, []
    if key == "7d":
        return tomorrow - timedelta(days=7), tomorrow, []
    if key == "mtd":
        return _day_start(now.date().replace(day=1)), tomorrow, []
    if key == "last_month":
        first = now.date().replace(day=1)
        return _day_start((first - timedelta(days=1)).replace(day=1)), _day_start(first), []
    if key == "custom":
        return _custom(params, tomorrow)
    return tomorrow - timedelta(days=30), tomorrow, []


def _custom(params: QueryDict, tomorrow: datetime) -> tuple[datetime, datetime, list[str]]:
    try:
        first = _day(params, "from")
        last = _day(params, "to")
    except BadDate as exc:
        return tomorrow - timedelta(days=30), tomorrow, [f"{exc}; showing the last 30 days."]
    if last < first:
        first, last = last, first
    start, end = _day_start(first), _day_start(last + timedelta(days=1))
    if end - start <= MAX_RANGE:
        return start, end, []
    return _capped(start, end, tomorrow)


def _day(params: QueryDict, name: str) -> date:
    try:
        return parse_day(params.get(name, ""))
    except BadDate as exc:
        raise BadDate(f"Custom range: '{name}' {exc}") from None


def _capped(
    start: datetime, end: datetime, tomorrow: datetime
) -> tuple[datetime, datetime, list[str]]:
    """A range longer than the cap becomes its most recent MAX_RANGE_DAYS up to today (the
    days after today hold no usage), or its first ones when it begins later than that."""
    end = min(end, max(tomorrow, start + MAX_RANGE))
    start = end - MAX_RANGE
    shown = f"{start.date().isoformat()} to {(end - timedelta(days=1)).date().isoformat()}"
    return start, end, [f"A range spans at most {MAX_RANGE_DAYS} days; showing {shown}."]


def parse_filters(params: QueryDict, now: datetime | None = None) -> Filters:
    now = now or datetime.now(UTC)
    key = params.get("range", DEFAULT_RANGE)
    key = key if key in RANGES else DEFAULT_RANGE
    start, end, errors = _window(key, now, params)
    stack = params.get("stack", "team")
    values: dict[str, Any] = {name: text_param(params, name) for name in DIMENSION_FILTERS}
    if values["status"] and values["status"] not in statuses.NAMES:
        errors.append(f"No status class {values['status']!r}; showing every status.")
        values["status"] = ""
    return Filters(
        range=key,
        start=start,
        end=end,
        stack=stack if stack in STACKS else "team",
        errors=tuple(errors),
        **values,
    )
