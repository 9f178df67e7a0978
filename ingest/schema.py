"""The usage event, declared once: each field a client sends and each column the server adds.

`FIELDS` is one ordered table (SPEC.md's field table, plus what the server stores beside it).
For each field: its name (the JSON key, and the attribute of a cleaned `ValidEvent`), the rule
it follows (its kind), its limits, what a missing field means, its column in `UsageEvent`'s
table and that column's PostgreSQL type, and whether the client sends it or the server
derives it. The rest is made from it once, at import time:

- `ingest.typed`: the msgspec struct that decodes a request body, limits included;
- `ingest.validation`: the full rules, field by field in this order (so an event's errors are
  named in this order), and the one-pass checks of a well-formed event, a decoded dict's and a
  typed event's;
- `ingest.services`: the COPY column list and types, the grouped INSERT's columns, and the two
  row builders, whose tuples and objects follow this order.

`ValidEvent` stays written out, so that type checkers know its attributes; `check_record`
refuses, when `ingest.validation` is imported, one that differs from this table. The table is
checked against the `UsageEvent` model and its database table by tests/ingest/test_schema.py.
So a new field is its line here, its `ValidEvent` attribute, its model field and a migration;
a field of a new kind also needs that kind's rules.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass
from dataclasses import fields as dataclass_fields
from enum import Enum
from typing import Any


class Kind(Enum):
    """The rule a sent field follows (`ingest.validation` has its messages)."""

    ID = "an idempotency key: a string, not blank"
    TIME = "RFC 3339 with an offset, or epoch seconds; in the retention window; kept in UTC"
    NAME = "a string, not blank; stripped of surrounding blanks"
    TEXT = "a string; an empty one means the default, if that is a string"
    COUNT = "an integer from 0 to max_value"
    STATUS = "an integer from 0 to max_value, an HTTP status"
    DURATION = "a finite number from 0 to max_value, kept as a float"
    MONEY = "a decimal string or number from 0 to max_value, kept exact to 12 decimal places"
    TAGS = "an object of string to string, at most max_length keys"
    DERIVED = "not sent: set by the server"


class Default:
    """A default that is not a value: what the server makes for a missing field."""

    def __init__(self, meaning: str) -> None:
        self.meaning = meaning

    def __repr__(self) -> str:
        return f"<{self.meaning}>"


NEW_ID = Default("a new random id")  # a retry of such an event cannot be recognised
RECEIVED = Default("the time received")


@dataclass(frozen=True, eq=False)
class Field:
    """One field of a usage event; see `FIELDS`."""

    name: str
    kind: Kind
    pg_type: str  # the column's type, as COPY and json_to_recordset name it
    column: str = ""  # UsageEvent's column, when it is not `name`
    max_length: int | None = None  # characters (for TAGS: keys)
    # COUNT, STATUS, DURATION, MONEY: the largest value allowed (the least is 0)
    max_value: int | None = None
    # A sent field: must be present. A derived field: always set.
    required: bool = False
    # What a missing field means. A field neither required nor with a default may be NULL.
    default: Any = None
    null_is_default: bool = True  # a JSON null means the default; False: null is refused
    lower: bool = False  # NAME: lower-cased too

    def __post_init__(self) -> None:
        if not self.column:
            object.__setattr__(self, "column", self.name)

    @property
    def sent(self) -> bool:
        """Sent by the client (a field of `ValidEvent`), rather than derived by the server."""
        return self.kind is not Kind.DERIVED

    @property
    def null(self) -> bool:
        """Whether its column may hold NULL."""
        return not self.required and self.default is None


# Per-event bounds, so that no stored value and no sum of a tenant's events (hourly, daily,
# monthly, lifetime and per-consumer rollups, invoices, metrics) can overflow its column
# (README, "Send usage: REST"). Ten years at bench/ingest.py's ~65,000 events/s is
# 65,000 * 86,400 * 365.25 * 10 ~= 2.05e13 events:
# - money is numeric(28, 12), below 1e16: 1e16 / 2.05e13 ~= 487 USD a call, so at most
#   400 USD (2.05e13 * 400 = 8.2e15), a client's cost and the priced cost alike;
# - tokens: a count is at most 10**8, 50 times the largest context window sold today (2M).
#   Their sums (rollups, consumer windows, invoice lines) are numeric(38, 0) (core.counts):
#   2.05e13 * 10**8 = 2.05e21 fits; bigint's 9.22e18 would hold only 16 days of such calls;
# - latency: at most 10**9 ms (11.6 days); a float8 sum of 2.05e13 of them is 2e22, far below
#   float8's 1.8e308 (PostgreSQL raises an error where a float sum overflows).
MAX_COUNT = 10**8
MAX_COST_USD = 400
MAX_LATENCY_MS = 10**9
TAG_KEY_LENGTH, TAG_VALUE_LENGTH = 128, 256
DERIVED = Kind.DERIVED

# In the order the rules check the sent fields, which is the order an event's errors are named
# in (clients see it), then the derived ones. The database columns follow this order too.
# fmt: off
FIELDS = (
    Field("input_tokens", Kind.COUNT, "bigint", max_value=MAX_COUNT, required=True),
    Field("output_tokens", Kind.COUNT, "bigint", max_value=MAX_COUNT, required=True),
    # Parts of input_tokens (ingest.validation checks that they fit in it).
    Field("cache_read_tokens", Kind.COUNT, "bigint", max_value=MAX_COUNT, default=0),
    Field("cache_write_tokens", Kind.COUNT, "bigint", max_value=MAX_COUNT, default=0),
    Field("event_id", Kind.ID, "text", max_length=128, default=NEW_ID),
    Field("timestamp", Kind.TIME, "timestamptz", default=RECEIVED),
    Field("provider", Kind.NAME, "text", max_length=64, required=True, lower=True),
    Field("model", Kind.NAME, "text", max_length=128, required=True),
    # A team slug, stored as the team's id (an unknown one is refused by ingest.services);
    # missing: the API key's team.
    Field("team", Kind.TEXT, "bigint", column="team_id", max_length=64),
    Field("environment", Kind.TEXT, "text", max_length=64, default="production",
          null_is_default=False),
    Field("latency_ms", Kind.DURATION, "float8", max_value=MAX_LATENCY_MS),
    Field("status_code", Kind.STATUS, "int", max_value=999, default=200),
    # What the client computed; the cost the server prices is the derived cost_usd.
    Field("cost_usd", Kind.MONEY, "numeric", column="client_cost_usd", max_value=MAX_COST_USD),
    Field("tags", Kind.TAGS, "jsonb", max_length=20, default={}),
    Field("feature", Kind.TEXT, "text", max_length=128, default=""),
    Field("endpoint", Kind.TEXT, "text", max_length=128, default=""),
    Field("user_id", Kind.TEXT, "text", max_length=128, default=""),  # the end user
    Field("tenant_id", DERIVED, "bigint", required=True),  # the API key's tenant
    Field("api_key_id", DERIVED, "bigint"),  # the key that sent it; NULL once deleted
    Field("batch_id", DERIVED, "bigint", required=True),  # the PendingBatch it came in
    Field("received_at", DERIVED, "timestamptz", required=True),
    Field("hour", DERIVED, "timestamptz", required=True),  # the UTC hour of timestamp
    Field("cost_usd", DERIVED, "numeric", required=True),
    Field("cost_source", DERIVED, "text", max_length=16, required=True),
)
# fmt: on

SENT = tuple(f for f in FIELDS if f.sent)  # the fields of ValidEvent, in order
SENT_BY_NAME = {f.name: f for f in SENT}
COLUMNS = tuple(f.column for f in FIELDS)
PG_TYPES = tuple(f.pg_type for f in FIELDS)


def check_fields(fields: Iterable[Field]) -> None:
    """Refuse (ValueError) a declaration that the rules of its kinds cannot follow."""
    fields = list(fields)
    for unique in ([f.column for f in fields], [f.name for f in fields if f.sent]):
        if len(set(unique)) != len(unique):
            raise ValueError(f"a name or column declared twice: {unique}")
    for f in fields:
        limit = {
            Kind.ID: "max_length", Kind.NAME: "max_length", Kind.TEXT: "max_length",
            Kind.TAGS: "max_length", Kind.COUNT: "max_value", Kind.STATUS: "max_value",
            Kind.DURATION: "max_value", Kind.MONEY: "max_value",
        }.get(f.kind)  # fmt: skip
        if limit and getattr(f, limit) is None:
            raise ValueError(f"{f.name}: a field of kind {f.kind.name} needs its {limit}")
        if f.required and f.default is not None:
            raise ValueError(f"{f.name}: a required field has no default")
        if f.kind is Kind.STATUS and type(f.default) is not int:
            raise ValueError(f"{f.name}: a STATUS field needs an integer default")
        if f.kind is Kind.ID and f.default is not NEW_ID:
            raise ValueError(f"{f.name}: an ID field's default is NEW_ID")
        if f.kind is Kind.TIME and f.default is not RECEIVED:
            raise ValueError(f"{f.name}: a TIME field's default is RECEIVED")
        if f.kind is Kind.TAGS and f.default != {}:
            raise ValueError(f"{f.name}: a TAGS field's default is {{}}")
        if not f.null_is_default and (f.kind is not Kind.TEXT or type(f.default) is not str):
            raise ValueError(f"{f.name}: only a TEXT field with a default may refuse null")


check_fields(FIELDS)


def check_record(record: type, fields: Iterable[Field] = SENT) -> None:
    """Refuse (TypeError) a dataclass of cleaned events whose fields are not the sent fields in
    their order, or whose defaults differ from theirs."""
    fields = list(fields)
    attributes = dataclass_fields(record)
    if [a.name for a in attributes] != [f.name for f in fields]:
        raise TypeError(
            f"{record.__name__}'s fields must be {[f.name for f in fields]} (ingest.schema), "
            f"not {[a.name for a in attributes]}"
        )
    for attribute, f in zip(attributes, fields, strict=True):
        default = attribute.default
        if attribute.default_factory is not MISSING:
            default = attribute.default_factory()
        if default is not MISSING and default != f.default:
            raise TypeError(f"{record.__name__}.{f.name} must default to {f.default!r}")


def define(name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """The function `name` that `source` defines, run in `namespace` (a module's globals).

    For code written from FIELDS at import time, so that a declared field costs nothing per
    event that a written-out line would not. The source is kept for tracebacks and debuggers."""
    filename = f"<ingest.schema: {namespace.get('__name__', '?')}.{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - source made from FIELDS
    return namespace[name]  # type: ignore[no-any-return]


def define_row_builder(
    name: str,
    template: str,
    fields: Iterable[Field],
    sets: Iterable[str],
    row: Callable[[list[tuple[Field, str]]], str],
    namespace: dict[str, Any],
) -> Callable[..., Any]:
    """The function `name` that `template` defines, its `{row}` written by `row` from each
    field and the expression of its value: for the columns in `sets` (what the server derives
    or converts), the template's local variable of that name; for the others, the sent field
    as the event `e` holds it. ValueError for a derived column not in `sets`, or a name in
    `sets` that is no column or no local variable, or a sent field named like another local."""
    fields, sets = list(fields), set(sets)
    scratch = dict(namespace)
    exec(template.replace("{row}", "()"), scratch)  # noqa: S102 - a template of this package
    local = set(scratch[name].__code__.co_varnames)
    if not sets <= local or not sets <= {f.column for f in fields}:
        raise ValueError(f"{name} sets {sorted(sets)}: each must be a column and a variable")
    values = []
    for f in fields:
        if f.column in sets:
            values.append((f, f.column))
        elif not f.sent:
            raise ValueError(f"{name} does not set the column {f.column!r}")
        elif f.column in local:
            raise ValueError(f"{name} has a variable {f.column!r}: rename it, or set that column")
        else:
            values.append((f, f"e.{f.name}"))
    return define(name, template.replace("{row}", row(values)), namespace)
