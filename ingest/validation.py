"""Validate a batch of usage events without a serializer per event.

DRF serializers cap ingest near 20k events/s here; this plain-Python pass keeps the same
rules (SPEC.md's field table, declared in `ingest.schema`) and reports every problem by field
name, per event.

Two passes share the rules: `_common_case` accepts a well-formed event in one flat pass (a
few µs, what nearly every event is), and anything it does not accept goes through the full
validator, which decides and names every problem. The common case never accepts what the
full validator rejects, and cleans to the same values (tests/ingest/test_validation.py).
`POST /api/v1/events` bodies mostly skip both: `ingest.typed` decodes them into typed events
with msgspec and leaves only a few rules to Python, under the same promise.

Both follow `ingest.schema.FIELDS`: the full validator applies its kind's rule to each field,
in order; the one-pass checks (`_common_case`, and `ingest.typed`'s) are written from it once,
at import time, by `define_plain_check`, as flat code with no call per field.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from ingest import schema
from ingest.schema import (
    MAX_COST_USD,
    MAX_LATENCY_MS,
    SENT,
    TAG_KEY_LENGTH,
    TAG_VALUE_LENGTH,
    Field,
    Kind,
)

MAX_FUTURE = timedelta(minutes=5)
TOO_FAR_AHEAD = "is more than 5 minutes in the future"
# The last answer of `oldest_timestamp`: a request's events share their `now`.
_oldest: list[Any] = [None, 0, None]  # now, retention days, oldest timestamp


def oldest_timestamp(now: datetime) -> datetime:
    """The oldest timestamp an event may have: the raw-event retention window's start (older
    events would be deleted by the next sweep, and never shown)."""
    last_now, last_days, oldest = _oldest
    days = settings.RAW_EVENT_RETENTION_DAYS
    if now is not last_now or days != last_days:
        oldest = now - timedelta(days=days)
        _oldest[:] = [now, days, oldest]
    return oldest  # type: ignore[no-any-return]


def too_old() -> str:
    return f"is older than the raw-event retention ({settings.RAW_EVENT_RETENTION_DAYS} days)"


# Money is stored with 12 decimal places (numeric(28, 12)); an amount with more is rounded as
# PostgreSQL rounds it (half away from zero), here, where an exponent such as 1E-1000000 that
# numeric cannot even read is one more such amount.
MONEY_PLACES = -12
_MONEY_QUANTUM = Decimal(1).scaleb(MONEY_PLACES)
Errors = dict[str, list[str]]


@dataclass(slots=True)
class ValidEvent:
    """An event as the rules clean it: the sent fields of `ingest.schema.FIELDS`, in order."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    event_id: str
    timestamp: datetime
    provider: str
    model: str
    team: str | None
    environment: str = "production"
    latency_ms: float | None = None
    status_code: int = 200
    cost_usd: Decimal | None = None
    tags: dict[str, str] = field(default_factory=dict)
    feature: str = ""
    endpoint: str = ""
    user_id: str = ""


schema.check_record(ValidEvent)  # written out for type checkers: it must be the declared one


# PostgreSQL's text cannot hold a NUL character: refused here, with the field's name, rather
# than by the database.
NUL = "\x00"
NO_NUL = "must not contain NUL characters"
# Nor a lone surrogate (a "\ud800" escape without its pair, which json.loads lets through):
# not Unicode text, and neither jsonb nor UTF-8 can hold it.
NO_SURROGATE = "must be valid Unicode: no unpaired surrogate (\\ud800-\\udfff) escapes"
_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_in(value: str) -> bool:
    """Whether `value` holds a lone surrogate (ASCII text, nearly every string, is O(1))."""
    return not value.isascii() and _SURROGATE.search(value) is not None


def storable(value: str) -> bool:
    """Whether PostgreSQL can store the string: no NUL character, no lone surrogate."""
    return NUL not in value and (value.isascii() or _SURROGATE.search(value) is None)


def _string(value: Any, max_len: int, errors: Errors, name: str) -> str | None:
    if not isinstance(value, str):
        errors[name] = ["must be a string"]
        return None
    if len(value) > max_len:
        errors[name] = [f"must be at most {max_len} characters"]
        return None
    if NUL in value:
        errors[name] = [NO_NUL]
        return None
    if surrogate_in(value):
        errors[name] = [NO_SURROGATE]
        return None
    return value


# The full rules, one per kind: each takes the event (a dict), the field, the errors so far and
# the time received; it returns the field's cleaned value, or adds the field's error.
Rule = Callable[[dict[str, Any], Field, Errors, datetime], Any]


def _event_id(raw: dict[str, Any], f: Field, errors: Errors, now: datetime) -> str:
    value = raw.get(f.name)
    if value is None:
        # No idempotency key given: the event is still counted once, but a retry cannot be
        # recognised. Clients that retry should always send their own event_id.
        return uuid.uuid4().hex
    if isinstance(value, str) and not value.strip():
        errors[f.name] = ["must not be empty"]
        return ""
    return _string(value, _length(f), errors, f.name) or ""


def _timestamp(raw: dict[str, Any], f: Field, errors: Errors, now: datetime) -> datetime:
    value = raw.get(f.name)
    if value is None:
        return now
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | Decimal):
            parsed = datetime.fromtimestamp(float(value), tz=UTC)
        elif isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                errors[f.name] = ["must include a UTC offset, e.g. 2026-01-31T12:00:00Z"]
                return now
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError, OSError):
        errors[f.name] = ["must be RFC 3339 with an offset or epoch seconds"]
        return now
    # In UTC: any offset Python reads (up to ±23:59) becomes one PostgreSQL stores.
    utc = in_utc(parsed)
    if utc is None or utc > now + MAX_FUTURE:
        # Out of range in UTC: before year 1 (an old date east of UTC) or after year 9999.
        errors[f.name] = [too_old() if utc is None and parsed.year == 1 else TOO_FAR_AHEAD]
        return now
    if utc < oldest_timestamp(now):
        errors[f.name] = [too_old()]
        return now
    return utc


def in_utc(parsed: datetime) -> datetime | None:
    """`parsed` (aware) in UTC, or None when that falls outside year 1 to 9999."""
    if parsed.tzinfo is UTC:
        return parsed
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def _name(raw: dict[str, Any], f: Field, errors: Errors, now: datetime) -> str:
    value = raw.get(f.name)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[f.name] = ["is required"]
        return ""
    name = (_string(value, _length(f), errors, f.name) or "").strip()
    return name.lower() if f.lower else name


def _text(raw: dict[str, Any], f: Field, errors: Errors, now: datetime) -> str | None:
    value = raw.get(f.name)
    if value is None and (f.null_is_default or f.name not in raw):
        return f.default  # type: ignore[no-any-return]
    text = _string(value, _length(f), errors, f.name)
    if text is None:
        return f.default  # type: ignore[no-any-return]
    return text or f.default if type(f.default) is str else text


def _count(raw: dict[str, Any], f: Field, errors: Errors, now: datetime) -> int:
    value = raw.get(f.name)
    if value is None:
        if f.required:
            errors[f.name] = ["is required"]
        return 0
    # bool is an int in Python, but `true` is not a token count.
    if isinstance(value, bool) or not isinstance(value, int):
        errors[f.name] = ["must be an integer"]
        return 0
    if value < 0:
        errors[f.name] = ["must be zero or more"]
        return 0
    if value > _most(f):
        errors[f.name] = [f"must be at most {_most(f):,}"]
        return 0
    return value


def _status(raw: dict[str, Any], f: Field, errors: Errors, now: datetime) -> int:
    value = raw.get(f.name)
    if value is None:
        return f.default  # type: ignore[no-any-return]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _most(f):
        errors[f.name] = ["must be an integer HTTP status"]
        return f.default  # type: ignore[no-any-return]
    return value


def _latency(raw: dict[str, Any], f: Field, errors: Errors, now: datetime) -> float | None:
    value = raw.get(f.name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or value < 0:
        errors[f.name] = ["must be a number of zero or more"]
        return None
    latency = finite_float(value)  # a duration, not money
    if latency is None:
        errors[f.name] = ["must be a finite number of milliseconds"]
    elif latency > _most(f):
        errors[f.name] = [f"must be at most {_most(f):,} milliseconds"]
        return None
    return latency


def _money(raw: dict[str, Any], f: Field, errors: Errors, now: datetime) -> Decimal | None:
    value = raw.get(f.name)
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise TypeError
        amount = Decimal(value)
    except (TypeError, InvalidOperation):
        errors[f.name] = ["must be a decimal string or number"]
        return None
    if not amount.is_finite() or amount < 0:
        errors[f.name] = ["must be a finite amount of zero or more"]
        return None
    if amount > _most(f):
        errors[f.name] = [f"must be at most {_most(f)} USD for one call"]
        return None
    return _money_places(amount)


def _money_places(amount: Decimal) -> Decimal:
    """`amount` with at most 12 decimal places, rounded as PostgreSQL's numeric(28, 12) does."""
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # a finite amount
    return amount if exponent >= MONEY_PLACES else amount.quantize(_MONEY_QUANTUM, ROUND_HALF_UP)


def _tags(raw: dict[str, Any], f: Field, errors: Errors, now: datetime) -> dict[str, str]:
    value = raw.get(f.name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        errors[f.name] = ["must be an object of string to string"]
        return {}
    if len(value) > _length(f):
        errors[f.name] = [f"must have at most {f.max_length} keys"]
        return {}
    if any(len(k) > TAG_KEY_LENGTH or len(v) > TAG_VALUE_LENGTH for k, v in value.items()):
        errors[f.name] = [
            f"keys must be at most {TAG_KEY_LENGTH} and values {TAG_VALUE_LENGTH} characters"
        ]
        return {}
    if any(NUL in k or NUL in v for k, v in value.items()):
        errors[f.name] = [NO_NUL]
        return {}
    if any(surrogate_in(k) or surrogate_in(v) for k, v in value.items()):
        errors[f.name] = [NO_SURROGATE]
        return {}
    return value


def _length(f: Field) -> int:
    assert f.max_length is not None  # schema.check_fields: every field of its kind has one
    return f.max_length


def _most(f: Field) -> int:
    assert f.max_value is not None  # schema.check_fields: every field of its kind has one
    return f.max_value


RULES: dict[Kind, Rule] = {
    Kind.ID: _event_id, Kind.TIME: _timestamp, Kind.NAME: _name, Kind.TEXT: _text,
    Kind.COUNT: _count, Kind.STATUS: _status, Kind.DURATION: _latency, Kind.MONEY: _money,
    Kind.TAGS: _tags,
}  # fmt: skip
_FULL = tuple((RULES[f.kind], f) for f in SENT)
_COUNTS = {f.name for f in SENT if f.kind is Kind.COUNT}
CACHED_OVER_INPUT = (
    "cache_read_tokens + cache_write_tokens cannot exceed input_tokens (they are part of it)"
)


def finite_float(value: int | float | Decimal) -> float | None:
    """`value` as a finite float, or None: 1e400 is infinite as a float, 10**400 overflows."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def validate_event(raw: Any, now: datetime) -> tuple[ValidEvent | None, Errors]:
    """Check one event; returns it cleaned, or None with errors keyed by field name."""
    if type(raw) is dict:
        event = _common_case(raw, now)
        if event is not None:
            return event, {}
    return validate_in_full(raw, now)


def validate_in_full(raw: Any, now: datetime) -> tuple[ValidEvent | None, Errors]:
    """Every rule, field by field in the declared order, each problem named by its field."""
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["each event must be a JSON object"]}
    errors: Errors = {}
    event = ValidEvent(*[rule(raw, f, errors, now) for rule, f in _FULL])
    # Across fields: the cached tokens are parts of input_tokens (when every count is valid).
    cached = event.cache_read_tokens + event.cache_write_tokens
    if cached > event.input_tokens and not _COUNTS & errors.keys():
        errors["cache_read_tokens"] = [CACHED_OVER_INPUT]
        errors = {f.name: errors[f.name] for f in SENT if f.name in errors}  # declared order
    return (None, errors) if errors else (event, {})


def plain_timestamp(value: Any, now: datetime) -> datetime | None:
    """A valid RFC 3339 string or epoch seconds as `_timestamp` reads it, or None for
    anything `_timestamp` would refuse (or question)."""
    kind = type(value)
    try:
        if kind is str:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                return None
        elif kind is int or kind is Decimal:
            parsed = datetime.fromtimestamp(float(value), tz=UTC)
        else:
            return None
        if parsed.tzinfo is not UTC:
            parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    # The window's start, as `oldest_timestamp` gives it (its last answer, for this `now`).
    oldest = _oldest[2] if now is _oldest[0] else oldest_timestamp(now)
    return parsed if oldest <= parsed <= now + MAX_FUTURE else None


def plain_latency(value: Any) -> float | None:
    """A valid latency_ms as float, or None for anything `_latency` would refuse (or question).
    Exact types only: a subclass (or bool, an int subclass) is left to the full validator."""
    kind = type(value)
    if kind is float:  # NaN fails both comparisons, infinity the second
        return value if 0 <= value <= MAX_LATENCY_MS else None  # type: ignore[no-any-return]
    if kind is int:
        return float(value) if 0 <= value <= MAX_LATENCY_MS else None
    if kind is not Decimal or value < 0:
        return None
    latency = finite_float(value)  # a duration, not money
    return latency if latency is not None and latency <= MAX_LATENCY_MS else None


def plain_money(value: Any) -> Decimal | None:
    """A valid cost_usd as Decimal, or None for anything `_money` would refuse (or question)."""
    kind = type(value)
    if kind is Decimal:
        amount = value  # what Decimal(value) would copy: the same digits and exponent
    elif kind is str or kind is int:
        try:
            amount = Decimal(value)
        except InvalidOperation:
            return None
    else:
        return None
    if not amount.is_finite() or not 0 <= amount <= MAX_COST_USD:
        return None
    return _money_places(amount)


def plain_tags(tags: Any, max_length: int) -> bool:
    """Whether `tags` is valid as `_tags` reads it (exact types only)."""
    if type(tags) is not dict or len(tags) > max_length:
        return False
    for k, v in tags.items():
        if type(k) is not str or type(v) is not str:
            return False
        if len(k) > TAG_KEY_LENGTH or len(v) > TAG_VALUE_LENGTH:
            return False
        if not storable(k) or not storable(v):
            return False
    return True


# The one-pass checks, written from the declaration. Per field, statements that leave its
# cleaned value in the local variable of its name, or return None when the value is not
# plainly valid (then the full rules decide and name the problem); none when a decoded
# event's attribute is that value already. Read from a dict (`get`), they check each type and
# limit as the full rules do; read from an event msgspec decoded (`e`), what msgspec checked
# already is left out.
def _plain_lines(f: Field, typed: bool) -> list[str]:
    n, default = f.name, repr(f.default)
    read = f"{n} = e.{n}" if typed else f"{n} = get({n!r})"
    # Not storable: a NUL, or (only in text that is not ASCII) a lone surrogate.
    unstorable = f"NUL in {n} or not {n}.isascii() and surrogate_in({n})"
    not_text = f"type({n}) is not str or len({n}) > {f.max_length} or {unstorable}"
    otherwise_default = [f"if {n} is None:", f"    {n} = {default}"]
    # An empty string means a text field's default (for "production"; "" is "" anyway).
    empty_is_default = [f"{n} = {n} or {default}"] if type(f.default) is str and f.default else []
    refuse = "    return None"
    # Typed: None or a falsy value means a falsy default (0, ""), or a text field's default.
    or_default = f"{n} = e.{n} or {default}"
    match f.kind:
        case Kind.COUNT if typed:
            if f.required:
                return []
            return [or_default if not f.default else f"{n} = {default} if e.{n} is None else e.{n}"]
        case Kind.COUNT:
            # Optional counts: an explicit null is not 0 here but the full rules' case.
            missing = "" if f.required else f", {default}"
            return [
                f"{n} = get({n!r}{missing})",
                f"if type({n}) is not int or not 0 <= {n} <= {f.max_value}:", refuse,
            ]  # fmt: skip
        case Kind.NAME:
            strip = f".strip(){'.lower()' if f.lower else ''}"
            if typed:
                return [f"{n} = e.{n}{strip}", f"if not {n}:", refuse]
            check = f"if type({n}) is not str or len({n}) > {f.max_length}:"
            strip_check = f"if not {n} or {unstorable}:"
            return [read, check, refuse, f"{n} = {n}{strip}", strip_check, refuse]
        case Kind.ID:
            blank = f"not {n}.strip()" if typed else f"{not_text} or not {n}.strip()"
            return [
                read,
                f"if {n} is None:",
                f"    {n} = uuid.uuid4().hex",
                f"elif {blank}:",
                refuse,
            ]
        case Kind.TEXT if typed:
            # None (where msgspec let a null through) or "": the default, if that is a string.
            return [or_default] if type(f.default) is str else []
        case Kind.TEXT if not f.null_is_default:
            return [f"{n} = get({n!r}, {default})", f"if {not_text}:", refuse, *empty_is_default]
        case Kind.TEXT if f.default is None:
            return [read, f"if {n} is not None and ({not_text}):", refuse]
        case Kind.TEXT:
            return [read, *otherwise_default, f"elif {not_text}:", refuse, *empty_is_default]
        case Kind.TIME:
            parse = f"{n} = now if {n} is None else plain_timestamp({n}, now)"
            return [read, parse, f"if {n} is None:", refuse]
        case Kind.DURATION:
            return [read, f"if {n} is not None and ({n} := plain_latency({n})) is None:", refuse]
        case Kind.MONEY:
            return [read, f"if {n} is not None and ({n} := plain_money({n})) is None:", refuse]
        case Kind.STATUS if typed:
            return [f"{n} = {default} if e.{n} is None else e.{n}"]
        case Kind.STATUS:
            check = f"elif type({n}) is not int or not 0 <= {n} <= {f.max_value}:"
            return [read, *otherwise_default, check, refuse]
        case Kind.TAGS if typed:
            return [f"{n} = e.{n} or {{}}"]
        case Kind.TAGS:
            return [
                read,
                f"if {n} is None:",
                f"    {n} = {{}}",
                f"elif not plain_tags({n}, {f.max_length}):",
                refuse,
            ]
    raise ValueError(f"{n}: no one-pass check for a field of kind {f.kind.name}")


# What the one-pass checks' code names besides the fields (their local variables).
_PLAIN_NAMES = {
    "e", "raw", "get", "now", "uuid", "NUL", "ValidEvent", "plain_timestamp", "plain_latency",
    "plain_money", "plain_tags", "surrogate_in",
}  # fmt: skip


def define_plain_check(
    name: str,
    typed: bool,
    fields: Sequence[Field] = SENT,
    namespace: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """`name(raw, now)` for a dict (typed: `name(e, now)` for a decoded event): the event
    cleaned as `validate_in_full` cleans it, or None if any rule is not plainly met. It is
    defined in `namespace` (this module's by default), whose `ValidEvent` it returns."""
    clash = {f.name for f in fields} & _PLAIN_NAMES
    if clash:
        raise ValueError(f"fields named like a name of the one-pass checks: {sorted(clash)}")
    lines = [f"def {name}(e, now):"] if typed else [f"def {name}(raw, now):", "    get = raw.get"]
    value = {}  # each field's cleaned value: its local variable, or the event's attribute
    for f in fields:
        steps = _plain_lines(f, typed)
        lines += [f"    {line}" for line in steps]
        value[f.name] = f.name if steps else f"e.{f.name}"
    cached = f"{value['cache_read_tokens']} + {value['cache_write_tokens']}"
    lines += [
        f"    if {cached} > {value['input_tokens']}:",
        "        return None",
        f"    return ValidEvent({', '.join(value[f.name] for f in fields)})",
    ]
    return schema.define(
        name, "\n".join(lines) + "\n", globals() if namespace is None else namespace
    )


# A well-formed event, cleaned exactly as `validate_in_full` would; None for anything else
# (then the full validator decides). One flat pass: at ingest rates the full validator's
# dozen helper calls and error dict per event were a large share of the CPU.
_common_case: Callable[[dict[str, Any], datetime], ValidEvent | None] = define_plain_check(
    "_common_case", typed=False
)
# The same for an event `ingest.typed` decoded: msgspec already checked every type, length
# and range; what is left are blank names, the timestamp, cached tokens within input tokens,
# latency and money, and the defaults of missing fields.
plain_typed: Callable[[Any, datetime], ValidEvent | None] = define_plain_check(
    "plain_typed", typed=True
)
