"""Validate a batch of usage events without a serializer per event.

DRF serializers cap ingest near 20k events/s here; this plain-Python pass keeps the same
rules (SPEC.md's field table) and reports every problem by field name, per event.
"""

from __future__ import annotations

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


@dataclass
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


def _string(value: Any, max_len: int, errors: Errors, name: str) -> str | None:
    if not isinstance(value, str):
        errors[name] = ["must be a string"]
        return None
    if len(value) > max_len:
        errors[name] = [f"must be at most {max_len} characters"]
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
    return float(value)  # a duration, not money


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
