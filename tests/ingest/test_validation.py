"""The fast passes of validation answer exactly as the full validator would: the one-pass
common case of a decoded dict, and the typed decoder of whole bodies (`ingest.typed`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.endpoint import events_of, parse_json
from ingest.typed import JsonPathNeeded, decode_events, validate_typed
from ingest.validation import Errors, ValidEvent, validate_event, validate_in_full

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
    st.just(Decimal("399.123456789012")), st.integers(-1, 10), st.booleans(),
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


def drawn_event(draw: Any, fields: dict[str, Any], keeps: int) -> dict[str, Any]:
    """A well-formed event with some fields set from `fields` or left out (1 in keeps + 2
    chances each)."""
    event: dict[str, Any] = {
        "event_id": "evt-1", "provider": "OpenAI", "model": "gpt-4o", "input_tokens": 1000,
        "output_tokens": 50, "timestamp": "2026-03-01T11:59:00+00:00",
    }  # fmt: skip
    for name, values in fields.items():
        choice = draw(st.sampled_from(["keep"] * keeps + ["set", "drop"]))
        if choice == "set":
            event[name] = draw(values)
        elif choice == "drop":
            event.pop(name, None)
    return event


@st.composite
def raw_events(draw: Any) -> dict[str, Any]:
    # Mostly well-formed events (the common case), with some fields made wrong or left out.
    return drawn_event(draw, FIELDS, keeps=2)


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
        "output_tokens": 1, "cost_usd": Decimal("399.123456789012"),
        "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
    }  # fmt: skip
    event, errors = validate_event(raw, NOW)
    assert errors == {} and event is not None
    assert event.cost_usd == Decimal("399.123456789012")
    assert isinstance(event.cost_usd, Decimal)


# The typed decoder (`ingest.typed`): a body it takes must come out exactly as the JSON path
# (`json.loads` + `validate_event`) makes it; a body it leaves is answered by that path.
MARK = "@@number@@"


def to_json(value: Any) -> bytes:
    """JSON text with each Decimal written as the bare number it is, as a client sends it."""
    text = json.dumps(value, default=lambda d: f"{MARK}{d}{MARK}")
    return re.sub(f'"{MARK}(.*?){MARK}"', r"\1", text).encode()


def outcome(path: Callable[[bytes], Any], body: bytes) -> Any:
    try:
        return path(body)
    except Exception as exc:  # what the endpoint answers with: BodyError, or a 500
        return type(exc)


def typed_path(body: bytes) -> list[tuple[ValidEvent | None, Errors]] | None:
    """Per event (cleaned, errors) on the typed path; None for a body it leaves to JSON."""
    events = decode_events(body)
    if events is None:
        return None
    try:
        return [validate_typed(e, NOW) for e in events]
    except JsonPathNeeded:
        return None


def json_path(body: bytes) -> list[tuple[ValidEvent | None, Errors]]:
    return [validate_event(raw, NOW) for raw in events_of(parse_json(body))]


def shown(event: ValidEvent | None, made_up_id: bool) -> list[str] | None:
    """Every field as repr: types, Decimal digits and exponent, time zones all count."""
    if event is None:
        return None
    return [
        "<uuid4>" if made_up_id and f.name == "event_id" else repr(getattr(event, f.name))
        for f in fields(event)
    ]


def assert_typed_path_answers_as_json_path(body: bytes) -> bool:
    """True when the typed path took the body (and answered exactly as the JSON path)."""
    typed, full = outcome(typed_path, body), outcome(json_path, body)
    if typed is None:
        return False
    if not isinstance(typed, list) or not isinstance(full, list):
        assert typed == full  # the same failure
        return True
    assert [errors for _, errors in typed] == [errors for _, errors in full]
    for (fast, _), (slow, _) in zip(typed, full, strict=True):
        made_up = fast is not None and slow is not None and fast.event_id != slow.event_id
        if made_up:  # both made one up only when the body had none: uuid4, different by design
            assert fast is not None and len(fast.event_id) == 32 == len(slow.event_id or "")
        assert shown(fast, made_up) == shown(slow, made_up)
    return True


# Values of the JSON types the typed decoder takes, on and around every rule's edge.
EDGY_NAMES = ["", "  ", " OpenAI ", "x" * 64, "x" * 65, "x" * 128, "x" * 129]
names = st.one_of(st.text(max_size=3), st.sampled_from(EDGY_NAMES))
optional_names = st.one_of(st.none(), names)
epochs = st.one_of(
    st.integers(-10, 2**40), st.decimals(-10, 2**34, allow_nan=False, allow_infinity=False)
)
finite = st.decimals(allow_nan=False, allow_infinity=False)
TYPED_FIELDS: dict[str, Any] = {
    "event_id": optional_names,
    "provider": names,
    "model": names,
    "input_tokens": st.one_of(st.integers(-1, 5000), st.sampled_from([2**62 - 1, 2**62])),
    "output_tokens": st.one_of(st.integers(0, 50), st.just(2**62)),
    "cache_read_tokens": st.one_of(st.none(), st.integers(0, 1200)),
    "cache_write_tokens": st.one_of(st.none(), st.integers(-1, 300)),
    "feature": optional_names,
    "endpoint": optional_names,
    "user_id": optional_names,
    "team": optional_names,
    "environment": names,
    "timestamp": st.one_of(timestamps.filter(lambda t: type(t) is not bool), epochs, names),
    "latency_ms": st.one_of(st.none(), st.integers(-2, 2000), finite),
    "status_code": st.one_of(st.none(), st.integers(-1, 1000)),
    "cost_usd": st.one_of(money.filter(lambda m: type(m) is not float), finite, names),
    "tags": st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3),
        st.sampled_from(
            [
                {str(i): "v" for i in range(20)},
                {str(i): "v" for i in range(21)},
                {"k" * 128: "v" * 256},
                {"k" * 129: "v"},
                {"k": "v" * 257},
            ]
        ),
    ),
}


@st.composite
def typed_events(draw: Any) -> dict[str, Any]:
    return drawn_event(draw, TYPED_FIELDS, keeps=10)


def with_unknown_field(draw: Any, event: dict[str, Any]) -> dict[str, Any]:
    if draw(st.integers(0, 9)) == 0:
        event["sdk_version"] = draw(st.one_of(st.text(max_size=3), st.integers(), st.just([1])))
    return event


@st.composite
def bodies(draw: Any) -> bytes:
    kind = draw(st.sampled_from([typed_events(), typed_events(), raw_events()]))
    events = [with_unknown_field(draw, draw(kind)) for _ in range(draw(st.integers(1, 3)))]
    if len(events) == 1 and draw(st.booleans()):
        return to_json(events[0])
    return to_json({"events": events})


@settings(max_examples=3000, deadline=None)
@given(bodies())
def test_it_cleans_every_body_it_takes_as_the_json_path_does(body: bytes) -> None:
    assert_typed_path_answers_as_json_path(body)


def test_it_takes_well_formed_batches_without_the_json_path() -> None:
    plain = {"provider": "openai", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 2}
    rich = {
        **plain, "event_id": "e-1", "timestamp": "2026-03-01T11:59:00Z", "cache_read_tokens": 4,
        "cache_write_tokens": 1, "feature": "chat", "endpoint": "/v1", "user_id": "u",
        "team": "search", "environment": "staging", "latency_ms": 812.5, "status_code": 429,
        "cost_usd": Decimal("0.0012"), "tags": {"version": "2"},
    }  # fmt: skip
    epoch = {**plain, "timestamp": 1772366340, "cost_usd": "0.5", "latency_ms": 3}
    wanted: list[dict[str, Any]] = [plain, rich, epoch, {"events": [plain, rich, epoch]}]
    for body in [*wanted, {"events": []}]:
        assert assert_typed_path_answers_as_json_path(to_json(body)), body


JSON_NUMBER = r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?"


@settings(max_examples=1000, deadline=None)
@given(st.from_regex(JSON_NUMBER, fullmatch=True), st.sampled_from(["cost_usd", "latency_ms", "timestamp"]))  # fmt: skip
def test_it_reads_every_json_number_as_the_json_path_does(number: str, name: str) -> None:
    body = b'{"provider": "p", "model": "m", "input_tokens": 1, "output_tokens": 1, "%s": %s}'
    assert_typed_path_answers_as_json_path(body % (name.encode(), number.encode()))


@pytest.mark.parametrize(
    "number", ["0.1", "1e-12", "399.123456789012", "0.10", "1E2", "-0.0", "0", "7"]
)
def test_it_keeps_a_numeric_cost_exactly_as_written(number: str) -> None:
    body = b'{"events": [{"provider": "p", "model": "m", "input_tokens": 1, "output_tokens": 1, "cost_usd": %s}]}'  # fmt: skip
    typed = typed_path(body % number.encode())
    assert typed is not None
    ((event, errors),) = typed
    assert errors == {} and event is not None
    assert type(event.cost_usd) is Decimal and str(event.cost_usd) == str(Decimal(number))
    assert assert_typed_path_answers_as_json_path(body % number.encode())


EVENT = {"provider": "openai", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 2}
NESTED = "[" * 995 + "]" * 995


def body_with(extra: str) -> bytes:
    """A well-formed event as JSON text, with `extra` (raw JSON members) added."""
    return (json.dumps(EVENT)[:-1] + ", " + extra + "}").encode()


EDGE_CASES = [
    to_json(EVENT),
    body_with('"events": null'),
    b'{"events": [], "events": [%s]}' % to_json(EVENT),
    b'{"events": [%s], "events": []}' % to_json(EVENT),
    b'{"events": [%s]}' % body_with('"feature": "a", "feature": "b"'),
    b'{"events": null}',
    b'{"events": {}}',
    b'{"events": [], "other": 1}',
    b"[]",
    b"null",
    b"",
    b"{}",
    b" \r\n\t%s \n" % to_json(EVENT),
    b"\xef\xbb\xbf" + to_json(EVENT),
    to_json({"events": [EVENT] * 1000}),
    to_json({"events": [EVENT] * 1001}),
    # Strings: UTF-8 and escapes, as json.loads reads them
    body_with('"note": "x"').replace(b'"x"', b'"\xff"'),
    body_with('"feature": "x"').replace(b'"x"', b'"\xff"'),
    body_with('"feature": "x"').replace(b'"x"', b'"\xed\xa0\x80"'),
    body_with('"note": "x"').replace(b'"x"', b'"\xed\xa0\x80"'),
    body_with('"feature": "\\ud800"'),
    body_with('"feature": "\\ud83d\\ude00"'),
    body_with('"feature": "caf\\u00e9"'),
    body_with('"feature": "a\\u0000"'),
    body_with('"tags": {"\\u0000": "v"}'),
    body_with('"feature": "a\\\\u0000"'),
    b'{"provider": "a", "prov\\u0069der": "b", "model": "m", "input_tokens": 1, "output_tokens": 1}',
    body_with('"tags": ' + NESTED),
    body_with('"cost_usd": [1]'),
    body_with('"timestamp": {}'),
    # Numbers
    body_with('"latency_ms": 1' + "0" * 400),
    body_with('"latency_ms": 1e400'),
    body_with('"latency_ms": -0.0'),
    body_with('"latency_ms": -1e-9'),
    body_with('"latency_ms": "5"'),
    body_with('"cost_usd": 1e400'),
    body_with('"cost_usd": 1' + "0" * 5000),
    body_with('"cost_usd": -0.0'),
    body_with('"cost_usd": -1e-30'),
    body_with('"cost_usd": NaN'),
    body_with('"cost_usd": true'),
    body_with('"cost_usd": "NaN"'),
    body_with('"cost_usd": "Infinity"'),
    body_with('"cost_usd": "-0"'),
    body_with('"cost_usd": "1_000"'),
    body_with('"cost_usd": " 1 "'),
    body_with('"status_code": null'),
    body_with('"status_code": 1000'),
    body_with('"status_code": 200.0'),
    b'{"provider": null, "model": "m", "input_tokens": 1.0, "output_tokens": true}',
    b'{"provider": "p", "model": "m", "input_tokens": 1e2, "output_tokens": -0}',
    b'{"provider": "p", "model": "m", "input_tokens": 4611686018427387903, "output_tokens": 1}',
    b'{"provider": "p", "model": "m", "input_tokens": 4611686018427387904, "output_tokens": 1}',
    body_with('"cache_read_tokens": 6, "cache_write_tokens": 5'),
    body_with('"cache_read_tokens": 5, "cache_write_tokens": 5'),
    body_with('"cache_read_tokens": null'),
    # Timestamps
    body_with('"timestamp": 1' + "0" * 30),
    body_with('"timestamp": 1e400'),
    body_with('"timestamp": 1772366340.5'),
    body_with('"timestamp": -1'),
    body_with('"timestamp": true'),
    body_with('"timestamp": "2026-03-01 11:00:00+01:00"'),
    body_with('"timestamp": "2026-03-01T11:00:00"'),
    body_with('"timestamp": "2026-03-01T12:05:00Z"'),
    body_with('"timestamp": "2026-03-01T12:05:00.000001Z"'),
    # Names, defaults, limits
    to_json({**EVENT, "provider": " OpenAI ", "model": " m ", "event_id": " e "}),
    to_json({**EVENT, "provider": " "}),
    to_json({**EVENT, "event_id": "  "}),
    to_json({**EVENT, "event_id": None}),
    to_json({**EVENT, "event_id": "x" * 129}),
    to_json({**EVENT, "provider": "\U0001f600" * 64, "feature": "\u00e9" * 128}),
    to_json({**EVENT, "provider": "\U0001f600" * 65}),
    to_json({**EVENT, "environment": None}),
    to_json({**EVENT, "environment": ""}),
    to_json({**EVENT, "environment": "  "}),
    to_json({**EVENT, "team": ""}),
    body_with('"tags": {"a": "1", "a": "2"}'),
    to_json({**EVENT, "tags": {"a": 1}}),
    to_json({**EVENT, "tags": None}),
    to_json({**EVENT, "tags": {str(i): "v" for i in range(20)}}),
    to_json({**EVENT, "tags": {str(i): "v" for i in range(21)}}),
    to_json({**EVENT, "tags": {"k" * 129: "v"}}),
    to_json({**EVENT, "tags": {"k": "v" * 257}}),
]


@pytest.mark.parametrize("body", EDGE_CASES)
def test_it_answers_edge_cases_as_the_json_path_does(body: bytes) -> None:
    assert_typed_path_answers_as_json_path(body)


@pytest.mark.parametrize("field", ["note", "cost_usd", "latency_ms", "timestamp"])
def test_it_answers_deeply_nested_bodies_as_the_json_path_does(field: str) -> None:
    # json.loads gives up (RecursionError: a 500, as before) a few levels before msgspec does;
    # where exactly depends on the stack, so every depth around it is tried from here.
    for depth in range(900, 1100):
        assert_typed_path_answers_as_json_path(
            body_with(f'"{field}": ' + "[" * depth + "]" * depth)
        )


def test_it_leaves_bodies_it_cannot_fully_judge_to_the_json_path() -> None:
    # Unknown fields are ignored by the JSON path, whose checks (UTF-8, nesting) they keep.
    for body in (
        body_with('"note": "x"').replace(b'"x"', b'"\xff"'),
        body_with('"note": ' + NESTED),
        body_with('"cost_usd": ' + NESTED),
        body_with('"feature": "a\\u0000"'),
        body_with('"input_tokens": 1.0'),
        to_json({"events": [EVENT] * 1001}),
    ):
        assert typed_path(body) is None, body


JSON_BYTES = st.sampled_from([*b'{}[]",:\\ u0e.-+1tfn', 0, 0xFF, 0xED, 0xA0, 0x80, 0xC3])


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), JSON_BYTES, st.booleans()), max_size=4))
def test_it_never_takes_a_garbled_body_the_json_path_would_answer_otherwise(
    edits: list[tuple[int, int, bool]],
) -> None:
    rich = {
        "event_id": "e", "provider": "openai", "model": "m", "input_tokens": 10,
        "output_tokens": 2, "timestamp": "2026-03-01T11:59:00+00:00", "cost_usd": Decimal("0.25"),
        "latency_ms": 12.5, "tags": {"a": "b"}, "feature": "f",
    }  # fmt: skip
    body = bytearray(to_json({"events": [rich, {**rich, "event_id": "f"}]}))
    for position, byte, insert in edits:
        at = position % (len(body) + 1)
        if insert:
            body.insert(at, byte)
        elif at < len(body):
            body[at] = byte
    assert_typed_path_answers_as_json_path(bytes(body))
