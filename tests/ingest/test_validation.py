"""The one-pass common case of validation answers exactly as the full validator would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.validation import validate_event, validate_in_full

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MISSING = object()

counts = st.one_of(
    st.integers(min_value=0, max_value=5000), st.integers(min_value=-3, max_value=2**63),
    st.booleans(), st.none(), st.just("12"), st.just(Decimal("1.5")),
)  # fmt: skip
texts = st.one_of(
    st.none(), st.text(max_size=3), st.just("  "), st.just(" openai "), st.just("x" * 129),
    st.just("x" * 65), st.integers(), st.just(["a"]),
)  # fmt: skip
timestamps = st.one_of(
    st.none(), st.just("2026-03-01T11:00:00+00:00"), st.just("2026-03-01T11:00:00Z"),
    st.just("2026-03-01T11:00:00"), st.just("2026-03-01T12:06:00+00:00"),
    st.just("2026-03-01T13:00:00+02:00"), st.just("yesterday"), st.integers(0, 2**40),
    st.just(Decimal("1767225600.5")), st.booleans(),
)  # fmt: skip
numbers = st.one_of(
    st.none(), st.integers(-2, 2000), st.floats(allow_nan=False), st.booleans(),
    st.just(Decimal("12.5")), st.just(Decimal("-0.1")), st.just("5"),
)  # fmt: skip
money = st.one_of(
    st.none(), st.just("0.0012"), st.just("-1"), st.just("abc"), st.just("NaN"),
    st.just(Decimal("12345678901234.123456789012")), st.integers(-1, 10), st.booleans(),
    st.floats(allow_nan=False),
)  # fmt: skip
tags = st.one_of(
    st.none(), st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3),
    st.just({"a": 1}), st.just({str(i): "v" for i in range(21)}), st.just({"k": "v" * 257}),
    st.just(["a"]),
)  # fmt: skip
FIELDS: dict[str, Any] = {
    "event_id": texts, "timestamp": timestamps, "provider": texts, "model": texts,
    "input_tokens": counts, "output_tokens": counts, "cache_read_tokens": counts,
    "cache_write_tokens": counts, "feature": texts, "endpoint": texts, "user_id": texts,
    "team": texts, "environment": texts, "latency_ms": numbers, "status_code": numbers,
    "cost_usd": money, "tags": tags,
}  # fmt: skip


@st.composite
def raw_events(draw: Any) -> dict[str, Any]:
    # Mostly well-formed events (the common case), with some fields made wrong or left out.
    event: dict[str, Any] = {
        "event_id": "evt-1", "provider": "OpenAI", "model": "gpt-4o", "input_tokens": 1000,
        "output_tokens": 50, "timestamp": "2026-03-01T11:59:00+00:00",
    }  # fmt: skip
    for name, values in FIELDS.items():
        choice = draw(st.sampled_from(["keep", "keep", "set", "drop"]))
        if choice == "set":
            event[name] = draw(values)
        elif choice == "drop":
            event.pop(name, None)
    return event


@settings(max_examples=3000, deadline=None)
@given(raw_events())
def test_it_validates_every_event_as_the_full_rules_do(raw: dict[str, Any]) -> None:
    fast, fast_errors = validate_event(raw, NOW)
    full, full_errors = validate_in_full(raw, NOW)
    assert fast_errors == full_errors
    if raw.get("event_id") is None and full is not None and fast is not None:
        fast.event_id = full.event_id  # both made one up: uuid4, different by design
    assert fast == full


def test_it_keeps_money_exact_in_the_common_case() -> None:
    raw = {
        "event_id": "m", "provider": "inhouse", "model": "m1", "input_tokens": 1,
        "output_tokens": 1, "cost_usd": Decimal("12345678901234.123456789012"),
        "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
    }  # fmt: skip
    event, errors = validate_event(raw, NOW)
    assert errors == {} and event is not None
    assert event.cost_usd == Decimal("12345678901234.123456789012")
    assert isinstance(event.cost_usd, Decimal)
