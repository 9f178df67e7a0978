"""Page filters, read from and written back to the query string so a view is a shareable link."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict

from core.dates import MAX_RANGE, MAX_RANGE_DAYS, BadDate, parse_day
from core.query import text_param
from rollups import statuses
from rollups.tag_selectors import TAG_FILTER_PREFIX, TAG_GROUP_PREFIX

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
STACKS = (
    "team", "feature", "model", "model_family", "provider", "environment", "endpoint", "status",
)  # fmt: skip


def stacks(tag_keys: Collection[str]) -> list[str]:
    """What a chart can be stacked by: the dimensions, then each chosen tag key."""
    return [*STACKS, *(f"{TAG_GROUP_PREFIX}{key}" for key in tag_keys)]


@dataclass(frozen=True)
class TagFilter:
    """`tag.<key>=<value>`: calls whose chosen tag `key` had `value` ("(none)": no value)."""

    key: str
    value: str  # as shown and linked; `rollups.tag_selectors.stored_value` for queries

    @property
    def param(self) -> str:
        return f"{TAG_FILTER_PREFIX}{self.key}"


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
    tag: TagFilter | None = None
    tag_keys: tuple[str, ...] = ()  # the tenant's chosen keys these filters were read against

    @property
    def more_set(self) -> bool:
        """Whether a filter of the bar's "More filters" is set (it opens then)."""
        return bool(self.endpoint or self.status or self.model_family or self.tag)

    @property
    def not_per_consumer(self) -> list[str]:
        """The filters set that per-user and per-key figures cannot apply: those are kept per
        day, team and environment only."""
        names = ("feature", "model", "endpoint", "status", "model_family")
        found = [name.replace("_", " ") for name in names if getattr(self, name)]
        return found + ([self.tag.param] if self.tag else [])

    @property
    def stack_tag(self) -> str | None:
        """The tag key the chart is stacked by, if any."""
        is_tag = self.stack.startswith(TAG_GROUP_PREFIX)
        return self.stack.removeprefix(TAG_GROUP_PREFIX) if is_tag else None

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
        if self.tag:
            params[self.tag.param] = self.tag.value
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


def parse_filters(
    params: QueryDict, now: datetime | None = None, tag_keys: Collection[str] = ()
) -> Filters:
    """The page's filters; `tag_keys` are the tenant's chosen tag keys, the only ones a
    `tag.<key>=` filter or a `tag:<key>` stack may name. A bad value is left out and said."""
    now = now or datetime.now(UTC)
    key = params.get("range", DEFAULT_RANGE)
    key = key if key in RANGES else DEFAULT_RANGE
    start, end, errors = _window(key, now, params)
    stack = params.get("stack", "team")
    values: dict[str, Any] = {name: text_param(params, name) for name in DIMENSION_FILTERS}
    if values["status"] and values["status"] not in statuses.NAMES:
        errors.append(f"status: No status class {values['status']!r}; showing every status.")
        values["status"] = ""
    tag, tag_errors = _tag_filter(params, tag_keys)
    stack = stack if stack in stacks(tag_keys) else "team"
    if tag and stack.startswith(TAG_GROUP_PREFIX) and stack != f"{TAG_GROUP_PREFIX}{tag.key}":
        tag_errors.append(f"stack: {stack} cannot be drawn under a {tag.param} filter; by team.")
        stack = "team"
    return Filters(
        range=key,
        start=start,
        end=end,
        stack=stack,
        errors=(*errors, *tag_errors),
        tag=tag,
        tag_keys=tuple(tag_keys),
        **values,
    )


def _tag_filter(params: QueryDict, tag_keys: Collection[str]) -> tuple[TagFilter | None, list[str]]:
    """The one `tag.<key>=<value>` filter of the query string, if any. Each chosen key's
    rollups count every call once, so two keys' rows cannot be narrowed together: a second
    key is left out, as is a key the tenant does not roll up. An empty value means "all"
    (what the filter bar sends for a key left at All)."""
    found: TagFilter | None = None
    errors: list[str] = []
    for name in sorted(n for n in params if n.startswith(TAG_FILTER_PREFIX)):
        key, value = name.removeprefix(TAG_FILTER_PREFIX), text_param(params, name)
        if not value:
            continue
        shown = text_param({"n": name}, "n", 80)
        if key not in tag_keys:
            chosen = ", ".join(sorted(tag_keys)) or "none chosen in settings"
            errors.append(
                f"{shown}: not a tag dimension of this tenant (chosen: {chosen}); "
                "showing every value."
            )
        elif found is not None:
            errors.append(
                f"{shown}: one tag filter at a time (each tag key's figures count every call "
                f"once, so two keys cannot be combined); keeping {found.param}."
            )
        else:
            found = TagFilter(key, value)
    return found, errors
