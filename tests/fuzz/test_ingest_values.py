"""The ingest API against nasty values, through the production server: never a 5xx, and every
valid event of a mixed batch is stored, whatever its neighbours carry.

Hypothesis builds batches of valid events (each with an id of its own) mixed with events
whose fields hold huge numbers, odd timestamps and offsets, long, empty and control-character
strings, deep nesting and the wrong types. The values that once made the API answer 500 and
lose the batch (issue 16) are in the pool too, and each is also tested on its own below.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.models import UsageEvent
from tests import worker
from tests.conftest import World
from tests.server import web_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
EVENTS = "/api/v1/events"


@pytest.fixture(scope="module")
def server_url(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    """One production server for the module, on the test database (tables are emptied
    between tests; every test makes keys of its own)."""
    with django_db_blocker.unblock():
        database_url = worker.test_database_url()
    with web_server({"DATABASE_URL": database_url}, workers=1) as base:
        yield base


@pytest.fixture
def server(world: World, server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60) as client:
        yield client


def _valid(tag: str, n: int) -> dict[str, Any]:
    return {
        "event_id": f"{tag}-ok-{n}",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 1000,
        "output_tokens": 200,
        "timestamp": (datetime.now(UTC) - timedelta(minutes=n)).isoformat(),
    }


def _nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


HUGE_NUMBERS = st.sampled_from(
    [2**62 - 1, 2**62, 2**63, 2**64, -1, 10**400, 1e300, -1e300, 1e15, 9999999999999999.0,
     "1e15", "NaN", "Infinity", "-0", "0E-1000", "1e-400", " 5 ", "5,0", True, None]
)  # fmt: skip
TIMESTAMPS = st.sampled_from(
    ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00-05:00", "9999-12-31T23:59:59Z",
     "9999-12-31T23:59:59+05:00", "1900-01-01T00:00:00+00:00", "2026-13-01T00:00:00Z",
     "2026-01-01T00:00:00", "2026-01-01T00:00:00+15:59", "2026-01-01T00:00:00-15:59",
     "2026-01-01T25:00:00Z", "yesterday", "", 1e20, -1e20, -62135596800, 253402300800, 0,
     1.5, 10**400, True, [], {}]
)  # fmt: skip
TEXTS = st.one_of(
    st.sampled_from(
        ["", " ", "\x00", "a\x00b", "x" * 129, "x" * 10_000, "=cmd|' /C calc'!A0", "\u202e",
         "\U0001f4b8", "\ud800", "\udfff\ud800", "search", "(unallocated)", "deleted-team-1",
         "null", "\\u0000"]
    ),
    st.text(max_size=40),  # Hypothesis' text never holds a lone surrogate
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=3),
)  # fmt: skip
TAGS = st.one_of(
    st.dictionaries(st.text(max_size=130), st.text(max_size=260), max_size=25),
    st.just({"deep": _nested(200)}),
    st.just("not-an-object"),
)
FIELDS = {
    "event_id": TEXTS,
    "provider": TEXTS,
    "model": TEXTS,
    "team": TEXTS,
    "feature": TEXTS,
    "endpoint": TEXTS,
    "user_id": TEXTS,
    "environment": TEXTS,
    "timestamp": TIMESTAMPS,
    "input_tokens": HUGE_NUMBERS,
    "output_tokens": HUGE_NUMBERS,
    "cache_read_tokens": HUGE_NUMBERS,
    "cache_write_tokens": HUGE_NUMBERS,
    "latency_ms": HUGE_NUMBERS,
    "status_code": HUGE_NUMBERS,
    "cost_usd": st.one_of(HUGE_NUMBERS, st.sampled_from(["1e15", "0.000000000000001"])),
    "tags": TAGS,
    "unknown": st.one_of(st.just(_nested(500)), TEXTS),
}


@st.composite
def nasty_events(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:  # not an object at all
        return draw(st.sampled_from([None, 1, "event", [], [{}], True]))
    event = _valid("nasty", draw(st.integers(0, 1000)))
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=4)):
        event[name] = draw(FIELDS[name])
    return event


def _post(client: httpx.Client, token: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return client.post(EVENTS, content=content, headers=headers)


def _stored(world: World, ids: list[str]) -> set[str]:
    rows = UsageEvent.objects.for_tenant(world.tenant).filter(event_id__in=ids)
    return set(rows.values_list("event_id", flat=True))


def _check_mixed_batch(
    client: httpx.Client, world: World, valid: int, nasty: list[Any]
) -> dict[str, Any]:
    tag = uuid.uuid4().hex
    good = [_valid(tag, n) for n in range(valid)]
    for n, event in enumerate(nasty):  # a fresh id, unless the id is the nasty part
        if isinstance(event, dict) and str(event.get("event_id", "")).startswith("nasty-ok-"):
            event["event_id"] = f"{tag}-nasty-{n}"
    batch = [*good, *nasty]
    response = _post(client, world.ingest.token, {"events": batch})
    assert response.status_code < 500, (response.status_code, response.text, batch)
    answer = response.json()
    assert answer["accepted"] + answer["duplicates"] + len(answer["rejected"]) == len(batch)
    stored = _stored(world, [e["event_id"] for e in good])
    assert stored == {e["event_id"] for e in good}, answer
    return answer


def test_it_stores_every_valid_event_of_a_batch_whatever_its_neighbours_hold(
    world: World, server: httpx.Client
) -> None:
    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        valid=st.integers(1, 3),
        nasty=st.lists(nasty_events(), max_size=6),
    )
    def check(valid: int, nasty: list[Any]) -> None:
        answer = _check_mixed_batch(server, world, valid, nasty)
        seen["rejected"] += len(answer["rejected"])
        seen["accepted"] += answer["accepted"] - valid

    seen = {"rejected": 0, "accepted": 0}
    check()
    # The pool reaches both sides of the validator: nasty events it refused and ones it took.
    assert seen["rejected"] > 100 and seen["accepted"] > 10, seen


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'{"events": {}}',
        b'{"events": []}',
        b'{"events": [null]}',
        b"\xff\xfe{",
        b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        b"{" * 50_000,
        json.dumps({"events": [{}] * 1001}).encode(),
        b'{"provider": "openai", "model": "m", "input_tokens": 1, "output_tokens": 1' + b" " * 10,
    ],
    ids=lambda b: b[:24].decode("utf-8", "replace"),
)
def test_it_answers_a_body_that_holds_no_event_with_a_4xx(
    world: World, server: httpx.Client, body: bytes
) -> None:
    response = _post(server, world.ingest.token, body)
    assert 400 <= response.status_code < 500, response.text


def _known(*values: tuple[str, Any]) -> list[Any]:
    return [pytest.param(name, value, id=f"{name}={value!r}"[:60]) for name, value in values]


ONCE_500S = _known(
    ("cost_usd", 1e16),
    ("cost_usd", 1e20),
    ("cost_usd", "100000000000000000"),
    ("cost_usd", "1e400"),
    ("cost_usd", 10**400),
    ("timestamp", "0001-01-01T00:00:00+05:00"),
    ("timestamp", "2026-01-01T00:00:00+16:00"),
    ("timestamp", "2026-01-01T00:00:00-20:00"),
    ("feature", "\ud800"),
    ("model", "gpt-\ud800"),
    ("tags", {"k": "\ud800"}),
)


@pytest.mark.parametrize(("name", "value"), ONCE_500S)
def test_it_stores_the_valid_neighbours_of_an_issue_16_value(
    world: World, server: httpx.Client, name: str, value: Any
) -> None:
    nasty = {**_valid("known", 0), "event_id": "known-nasty", name: value}
    _check_mixed_batch(server, world, 2, [nasty])


def test_it_answers_otlp_json_nested_100000_deep_with_a_400(
    world: World, server: httpx.Client
) -> None:
    body = b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers = {"Authorization": f"Bearer {world.ingest.token}", "Content-Type": "application/json"}
    response = server.post("/v1/traces", content=body, headers=headers)
    assert response.status_code == 400, response.text
