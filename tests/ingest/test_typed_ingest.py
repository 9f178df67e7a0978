"""`POST /api/v1/events` through the typed decoder: what a client sees is what the JSON path
(`json.loads` + the full rules) gave, answer bytes and stored rows alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from ingest.models import UsageEvent
from tenants.models import Tenant
from tests.conftest import World, event, post_json
from tests.ingest.test_validation import to_json as body

URL = "/api/v1/events"


def soon(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


STORED = (
    "event_id", "timestamp", "provider", "model", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "feature", "endpoint", "user_id", "environment",
    "latency_ms", "status_code", "client_cost_usd", "cost_usd", "cost_source", "tags",
    "team__slug",
)  # fmt: skip


def stored(tenant: Tenant) -> list[tuple[Any, ...]]:
    """Every stored field; money as text, so its digits count, not only its value."""
    rows = UsageEvent.objects.for_tenant(tenant).order_by("event_id").values_list(*STORED)
    return [tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in rows]


def mixed_batch() -> list[dict[str, Any]]:
    """Valid events among events that break the rules msgspec cannot check by itself."""
    return [
        event(0, timestamp=soon(-1), cost_usd=Decimal("0.1"), tags={"v": "2"}),
        event(1, timestamp=soon(10)),
        event(2, provider="  "),
        event(3, cache_read_tokens=600, cache_write_tokens=500),
        event(4, team="nope"),
        event(5, cost_usd="-1"),
        event(6, team="search", timestamp=int(datetime.now(UTC).timestamp()) - 60),
        event(7, timestamp="2026-01-31T12:00:00"),
        event(8, event_id=" ", latency_ms=-1),
    ]


def test_it_stores_exactly_the_valid_events_of_a_mixed_batch_with_errors_per_index(
    world: World,
) -> None:
    response = post_json(Client(), URL, body({"events": mixed_batch()}), world.ingest)
    assert response.status_code == 202
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"]) == (2, 0)
    assert {r["index"]: r["errors"] for r in answer["rejected"]} == {
        1: {"timestamp": ["is more than 5 minutes in the future"]},
        2: {"provider": ["is required"]},
        3: {
            "cache_read_tokens": [
                "cache_read_tokens + cache_write_tokens cannot exceed input_tokens (they are part of it)"
            ]
        },
        4: {"team": ["unknown team 'nope'"]},
        5: {"cost_usd": ["must be a finite amount of zero or more"]},
        7: {"timestamp": ["must include a UTC offset, e.g. 2026-01-31T12:00:00Z"]},
        8: {"event_id": ["must not be empty"], "latency_ms": ["must be a number of zero or more"]},
    }
    rows = UsageEvent.objects.for_tenant(world.tenant).order_by("event_id")
    assert [r.event_id for r in rows] == ["evt-0", "evt-6"]
    assert rows[0].client_cost_usd == Decimal("0.1")


def test_it_stores_the_valid_events_when_another_has_a_value_of_the_wrong_type(
    world: World,
) -> None:
    batch = [event(0), event(1, input_tokens="many"), event(2, sdk="1.2"), event(3, tags=[])]
    response = post_json(Client(), URL, body({"events": batch}), world.ingest)
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": [
            {"index": 1, "errors": {"input_tokens": ["must be an integer"]}},
            {"index": 3, "errors": {"tags": ["must be an object of string to string"]}},
        ],
    }
    assert [e[0] for e in stored(world.tenant)] == ["evt-0", "evt-2"]


def ev(n: int, **fields: Any) -> dict[str, Any]:
    """An event with a timestamp: one left out is the time received, which differs per post."""
    return event(n, **{"timestamp": "2026-01-31T12:00:00+00:00", **fields})


BODIES = {
    "mixed batch": lambda: body({"events": mixed_batch()}),
    "badly typed event": lambda: body({"events": [ev(0), ev(1, output_tokens=True)]}),
    "unknown field": lambda: body({"events": [ev(0, sdk={"v": [1]}), ev(1)]}),
    "one event": lambda: body(ev(0, latency_ms=12.5, status_code=429, environment="")),
    "one future event": lambda: body(ev(0, timestamp=soon(6))),
    "repeated event": lambda: body({"events": [ev(0), ev(0), ev(1, team="search")]}),
    "exact money": lambda: (
        b'{"events": [%s]}'
        % b", ".join(
            json.dumps(ev(i)).encode()[:-1] + b', "cost_usd": ' + number + b"}"
            for i, number in enumerate([b"0.1", b"1e-12", b"12345678901234.123456789", b"0.10"])
        )
    ),
    "NUL character": lambda: body({"events": [ev(0), ev(1, feature="a\x00")]}),
    "array for a cost": lambda: body({"events": [ev(0), ev(1, cost_usd=[1])]}),
    "no events": lambda: b'{"events": []}',
    "events not a list": lambda: b'{"events": {}}',
    "not JSON": lambda: b'{"events": [',
    "too many events": lambda: body({"events": [ev(i) for i in range(1001)]}),
    "cost as NaN": lambda: body(ev(0)).replace(b"}", b', "cost_usd": NaN}'),
}


@pytest.mark.parametrize("name", BODIES)
def test_it_answers_byte_for_byte_as_the_json_path_does(
    world: World, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    sent = BODIES[name]()
    typed = post_json(Client(), URL, sent, world.ingest)
    # The same body to the other tenant (which has a "search" team too), by the JSON path only.
    monkeypatch.setattr("ingest.endpoint.decode_events", lambda _body: None)
    plain = post_json(Client(), URL, sent, world.other_ingest)
    assert (typed.status_code, typed.content) == (plain.status_code, plain.content)
    assert stored(world.tenant) == stored(world.other_tenant)
