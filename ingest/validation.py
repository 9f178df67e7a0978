"""Validate a batch of usage events without a serializer per event.

DRF serializers cap ingest near 20k events/s here; this plain-Python pass keeps the same
rules (SPEC.md's field table) and reports every problem by field name, per event.

Two passes share the rules: `_common_case` accepts a well-formed event in one flat pass (a
few µs, what nearly every event is), and anything it does not accept goes through the full
validator, which decides and names every problem. The common case never accepts what the
full validator rejects, and cleans to the same values (tests/ingest/test_validation.py).
`POST /api/v1/events` bodies mostly skip both: `ingest.typed` decodes them into typed events
with msgspec and leaves only a few rules to Python, under the same promise.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict

MAX_FUTURE = timedelta(minutes=5)
MAX_TAGS = 20
TEXT_FIELDS = {"feature": 128, "endpoint": 128, "user_id": 128}
MAX_TOKENS = 2**62
Errors = dict[str, list[str]]


class _Tokens(TypedDict):
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int


class _OptionalText(TypedDict):
    feature: str
    endpoint: str
    user_id: str


@dataclass(slots=True)
class ValidEvent:
    event_id: str
    timestamp: datetime
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    team: str | None
    feature: str = ""
    endpoint: str = ""
    user_id: str = ""
    environment: str = "production"
    latency_ms: float | None = None
    status_code: int = 200
    cost_usd: Decimal | None = None
    tags: dict[str, str] = field(default_factory=dict)


# PostgreSQL's text cannot hold a NUL character: refused here, with the field's name, rather
# than by the database.
NUL = "\x00"
NO_NUL = "must not contain NUL characters"


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
    return value


def _required_string(raw: Mapping[str, Any], name: str, max_len: int, errors: Errors) -> str:
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[name] = ["is required"]
        return ""
    return (_string(value, max_len, errors, name) or "").strip()


def _count(raw: Mapping[str, Any], name: str, errors: Errors, required: bool) -> int:
    value = raw.get(name)
    if value is None:
        if required:
            errors[name] = ["is required"]
        return 0
    # bool is an int in Python, but `true` is not a token count.
    if isinstance(value, bool) or not isinstance(value, int):
        errors[name] = ["must be an integer"]
        return 0
    if not 0 <= value < MAX_TOKENS:
        errors[name] = ["must be zero or more"]
        return 0
    return value


def _timestamp(value: Any, now: datetime, errors: Errors) -> datetime:
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
                errors["timestamp"] = ["must include a UTC offset, e.g. 2026-01-31T12:00:00Z"]
                return now
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError, OSError):
        errors["timestamp"] = ["must be RFC 3339 with an offset or epoch seconds"]
        return now
    if parsed > now + MAX_FUTURE:
        errors["timestamp"] = ["is more than 5 minutes in the future"]
    return parsed


def _money(value: Any, errors: Errors) -> Decimal | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise TypeError
        amount = Decimal(value)
    except (TypeError, InvalidOperation):
        errors["cost_usd"] = ["must be a decimal string or number"]
        return None
    if not amount.is_finite() or amount < 0:
        errors["cost_usd"] = ["must be a finite amount of zero or more"]
        return None
    return amount


def _latency(value: Any, errors: Errors) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or value < 0:
        errors["latency_ms"] = ["must be a number of zero or more"]
        return None
    latency = finite_float(value)  # a duration, not money
    if latency is None:
        errors["latency_ms"] = ["must be a finite number of milliseconds"]
    return latency


def finite_float(value: int | float | Decimal) -> float | None:
    """`value` as a finite float, or None: 1e400 is infinite as a float, 10**400 overflows."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _status(value: Any, errors: Errors) -> int:
    if value is None:
        return 200
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
        errors["status_code"] = ["must be an integer HTTP status"]
        return 200
    return value


def _tags(value: Any, errors: Errors) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        errors["tags"] = ["must be an object of string to string"]
        return {}
    if len(value) > MAX_TAGS:
        errors["tags"] = [f"must have at most {MAX_TAGS} keys"]
        return {}
    if any(len(k) > 128 or len(v) > 256 for k, v in value.items()):
        errors["tags"] = ["keys must be at most 128 and values 256 characters"]
        return {}
    if any(NUL in k or NUL in v for k, v in value.items()):
        errors["tags"] = [NO_NUL]
        return {}
    return value


def _optional_text(raw: Mapping[str, Any], errors: Errors) -> _OptionalText:
    def text(name: str) -> str:
        value = raw.get(name)
        return "" if value is None else (_string(value, TEXT_FIELDS[name], errors, name) or "")

    return _OptionalText(
        feature=text("feature"), endpoint=text("endpoint"), user_id=text("user_id")
    )


def _tokens(raw: Mapping[str, Any], errors: Errors) -> _Tokens:
    counts = _Tokens(
        input_tokens=_count(raw, "input_tokens", errors, required=True),
        output_tokens=_count(raw, "output_tokens", errors, required=True),
        cache_read_tokens=_count(raw, "cache_read_tokens", errors, required=False),
        cache_write_tokens=_count(raw, "cache_write_tokens", errors, required=False),
    )
    cached = counts["cache_read_tokens"] + counts["cache_write_tokens"]
    if not errors and cached > counts["input_tokens"]:
        errors["cache_read_tokens"] = [
            "cache_read_tokens + cache_write_tokens cannot exceed input_tokens (they are part of it)"
        ]
    return counts


def _event_id(value: Any, errors: Errors) -> str:
    if value is None:
        # No idempotency key given: the event is still counted once, but a retry cannot be
        # recognised. Clients that retry should always send their own event_id.
        return uuid.uuid4().hex
    if isinstance(value, str) and not value.strip():
        errors["event_id"] = ["must not be empty"]
        return ""
    return _string(value, 128, errors, "event_id") or ""


def validate_event(raw: Any, now: datetime) -> tuple[ValidEvent | None, Errors]:
    """Check one event; returns it cleaned, or None with errors keyed by field name."""
    if type(raw) is dict:
        event = _common_case(raw, now)
        if event is not None:
            return event, {}
    return validate_in_full(raw, now)


def validate_in_full(raw: Any, now: datetime) -> tuple[ValidEvent | None, Errors]:
    """Every rule, one helper per field, each problem named by its field."""
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["each event must be a JSON object"]}
    errors: Errors = {}
    tokens = _tokens(raw, errors)
    team = raw.get("team")
    event = ValidEvent(
        event_id=_event_id(raw.get("event_id"), errors),
        timestamp=_timestamp(raw.get("timestamp"), now, errors),
        provider=_required_string(raw, "provider", 64, errors).lower(),
        model=_required_string(raw, "model", 128, errors),
        team=None if team is None else _string(team, 64, errors, "team"),
        environment=_string(raw.get("environment", "production"), 64, errors, "environment")
        or "production",
        latency_ms=_latency(raw.get("latency_ms"), errors),
        status_code=_status(raw.get("status_code"), errors),
        cost_usd=_money(raw.get("cost_usd"), errors),
        tags=_tags(raw.get("tags"), errors),
        **tokens,
        **_optional_text(raw, errors),
    )
    return (None, errors) if errors else (event, {})


def _common_case(raw: dict[str, Any], now: datetime) -> ValidEvent | None:
    """A well-formed event, cleaned exactly as `validate_in_full` would; None for anything
    else (then the full validator decides). One flat pass: at ingest rates the full
    validator's dozen helper calls and error dict per event were a large share of the CPU."""
    get = raw.get
    tokens = _common_tokens(get)
    if tokens is None:
        return None
    provider, model = get("provider"), get("model")
    if type(provider) is not str or type(model) is not str:
        return None
    if len(provider) > 64 or len(model) > 128:
        return None
    provider, model = provider.strip().lower(), model.strip()
    event_id, team, environment = get("event_id"), get("team"), get("environment", "production")
    if event_id is None:
        event_id = uuid.uuid4().hex
    elif type(event_id) is not str or len(event_id) > 128 or not event_id.strip():
        return None
    if (team is not None and (type(team) is not str or len(team) > 64)) or (
        type(environment) is not str or len(environment) > 64
    ):
        return None
    texts = _common_texts(get)
    stamp = get("timestamp")
    at = now if stamp is None else plain_timestamp(stamp, now)
    if not provider or not model or texts is None or at is None:
        return None
    if any(NUL in t for t in (provider, model, event_id, team or "", environment, *texts)):
        return None
    optional = _common_optional(get)
    if optional is None:
        return None
    (input_tokens, output_tokens, cache_read, cache_write), (feature, endpoint, user_id) = (
        tokens,
        texts,
    )
    latency, status, cost, tags = optional
    return ValidEvent(
        event_id, at, provider, model, input_tokens, output_tokens, cache_read, cache_write,
        team, feature, endpoint, user_id, environment or "production", latency, status, cost, tags,
    )  # fmt: skip


def _common_tokens(get: Any) -> tuple[int, int, int, int] | None:
    counts = (
        get("input_tokens"),
        get("output_tokens"),
        get("cache_read_tokens", 0),
        get("cache_write_tokens", 0),
    )
    for count in counts:
        if type(count) is not int or not 0 <= count < MAX_TOKENS:
            return None  # including an explicit null cache count: the full validator's case
    if counts[2] + counts[3] > counts[0]:
        return None
    return counts


def _common_texts(get: Any) -> tuple[str, str, str] | None:
    texts = (get("feature"), get("endpoint"), get("user_id"))
    for text in texts:
        if text is not None and (type(text) is not str or len(text) > 128):
            return None
    return texts[0] or "", texts[1] or "", texts[2] or ""


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
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed <= now + MAX_FUTURE else None


def plain_latency(value: Any) -> float | None:
    """A valid latency_ms as float, or None for anything `_latency` would refuse (or question).
    Exact types only: a subclass (or bool, an int subclass) is left to the full validator."""
    kind = type(value)
    if (kind is not int and kind is not float and kind is not Decimal) or value < 0:
        return None
    return finite_float(value)  # a duration, not money


def _common_optional(
    get: Any,
) -> tuple[float | None, int, Decimal | None, dict[str, str]] | None:
    """latency_ms, status_code, cost_usd and tags, or None if any is not plainly valid."""
    latency, status = get("latency_ms"), get("status_code")
    cost, tags = get("cost_usd"), get("tags")
    if latency is not None and (latency := plain_latency(latency)) is None:
        return None
    if status is None:
        status = 200
    elif type(status) is not int or not 0 <= status <= 999:
        return None
    if cost is not None:
        cost = plain_money(cost)
        if cost is None:
            return None
    if tags is None:
        tags = {}
    elif not _plain_tags(tags):
        return None
    return latency, status, cost, tags


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
    return amount if amount.is_finite() and amount >= 0 else None


def _plain_tags(tags: Any) -> bool:
    if type(tags) is not dict or len(tags) > MAX_TAGS:
        return False
    for k, v in tags.items():
        if type(k) is not str or type(v) is not str or len(k) > 128 or len(v) > 256:
            return False
        if NUL in k or NUL in v:
            return False
    return True
