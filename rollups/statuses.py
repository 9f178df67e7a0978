"""The status classes rollups keep of each call's HTTP status code, declared once.

The merge's SQL CASE (`STATUS_CLASS_SQL`), the Python `status_class` (tests, anything that
classifies a code by hand), what the usage API accepts as `status=` and what pages show are
all derived from `STATUS_CLASSES`. 429 is its own class, ahead of the other 4xx, so rate
limiting shows apart from client errors.
"""

from __future__ import annotations

from typing import NamedTuple


class StatusClass(NamedTuple):
    name: str
    low: int  # inclusive
    high: int  # inclusive
    label: str


# Checked in order: the first class whose range holds the code wins (429 before 4xx).
STATUS_CLASSES: tuple[StatusClass, ...] = (
    StatusClass("1xx", 100, 199, "1xx informational"),
    StatusClass("2xx", 200, 299, "2xx success"),
    StatusClass("3xx", 300, 399, "3xx redirect"),
    StatusClass("429", 429, 429, "429 rate limited"),
    StatusClass("4xx", 400, 499, "4xx client error"),
    StatusClass("5xx", 500, 599, "5xx server error"),
)
# A code outside 100-599 (ingest takes 0-999; 0 is what some clients send for a call that
# never got an answer, a timeout or a refused connection).
OTHER = "other"
# Rollup rows from before status classes were kept (see README: `rollup --since` rebuilds them).
NOT_RECORDED = ""
LABELS: dict[str, str] = {
    **{c.name: c.label for c in STATUS_CLASSES},
    OTHER: "other (not 100-599)",
    NOT_RECORDED: "not recorded",
}
NAMES: tuple[str, ...] = (*(c.name for c in STATUS_CLASSES), OTHER, NOT_RECORDED)


def status_class(code: int) -> str:
    for c in STATUS_CLASSES:
        if c.low <= code <= c.high:
            return c.name
    return OTHER


def status_class_sql(column: str) -> str:
    """The SQL CASE giving `status_class` of an integer column."""
    whens = " ".join(
        f"WHEN {column} BETWEEN {c.low} AND {c.high} THEN '{c.name}'" for c in STATUS_CLASSES
    )
    return f"CASE {whens} ELSE '{OTHER}' END"


def label(name: str) -> str:
    return LABELS.get(name, name)
