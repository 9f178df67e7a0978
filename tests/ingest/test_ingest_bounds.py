"""Issue 16: every value storage or a sum would refuse is refused per event, with its field
named, and the rest of the batch is stored; never a 500. Each case through the API, in a
small batch (the grouped INSERT) and a large one (COPY)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone as dj_timezone

from core.storage import is_storage_outage, is_transient_conflict
from ingest.models import UsageEvent
from tests.conftest import World, event

URL = "/api/v1/events"
UNPRICED = {"provider": "inhouse", "model": "unpriced-llm"}


def _post(world: World, events: list[Any]) -> Any:
    # json.dumps writes a lone surrogate as its \ud800 escape, as a client's JSON would.
    body = json.dumps({"events": events})
    return Client().post(URL, body, content_type="application/json", **world.ingest.auth)


def _ids(world: World) -> set[str]:
    return set(UsageEvent.objects.for_tenant(world.tenant).values_list("event_id", flat=True))


def _offset(hours: int) -> str:
    """Now, written with a UTC offset of `hours` (beyond ±15:59 for PostgreSQL)."""
    return dj_timezone.now().astimezone(timezone(timedelta(hours=hours))).isoformat()


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, fields of the bad event, the field named, part of its message)
    ("cost 1e16", {**UNPRICED, "cost_usd": 1e16}, "cost_usd", "at most 400 USD"),
    ("cost 1e20", {**UNPRICED, "cost_usd": "1e20"}, "cost_usd", "at most 400 USD"),
    ("cost 10**17", {**UNPRICED, "cost_usd": 10**17}, "cost_usd", "at most 400 USD"),
    ("cost 1e400", {**UNPRICED, "cost_usd": "1e400"}, "cost_usd", "at most 400 USD"),
    ("priced cost", {"input_tokens": 10**8, "output_tokens": 10**8}, "cost_usd", "priced cost"),
    ("tokens 2**62-1", {"input_tokens": 2**62 - 1}, "input_tokens", "at most 100,000,000"),
    ("latency 1e300", {"latency_ms": 1e300}, "latency_ms", "at most"),
    ("year 1 +05:00", {"timestamp": "0001-01-01T00:00:00+05:00"}, "timestamp", "retention"),
    ("year 1900", {"timestamp": "1900-01-01T00:00:00Z"}, "timestamp", "retention"),
    ("epoch 0", {"timestamp": 0}, "timestamp", "retention"),
    ("year 9999", {"timestamp": "9999-12-31T23:59:59-05:00"}, "timestamp", "future"),
    ("feature surrogate", {"feature": "\ud800"}, "feature", "surrogate"),
    ("model surrogate", {"model": "gpt\udc00"}, "model", "surrogate"),
    ("provider surrogate", {"provider": "\udfff"}, "provider", "surrogate"),
    ("event_id surrogate", {"event_id": "x\ud800"}, "event_id", "surrogate"),
    ("user_id surrogate", {"user_id": "\ud800u"}, "user_id", "surrogate"),
    ("tag key surrogate", {"tags": {"\ud800": "v"}}, "tags", "surrogate"),
    ("tag value surrogate", {"tags": {"k": "v\udbff"}}, "tags", "surrogate"),
]


@pytest.mark.parametrize("size", [2, 12], ids=["grouped-insert", "copy"])
@pytest.mark.parametrize(("case", "fields", "name", "message"), BAD, ids=[b[0] for b in BAD])
def test_it_refuses_the_bad_event_by_field_and_stores_the_rest(
    world: World, size: int, case: str, fields: dict[str, Any], name: str, message: str
) -> None:
    events = [event(f"ok-{i}") for i in range(size - 1)]
    events.insert(1, {**event("bad"), **fields})
    response = _post(world, events)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (size - 1, 0)
    ((rejected,),) = [body["rejected"]]
    assert rejected["index"] == 1 and list(rejected["errors"]) == [name]
    assert message in rejected["errors"][name][0]
    assert _ids(world) == {f"evt-ok-{i}" for i in range(size - 1)}


def test_three_events_of_the_most_tokens_once_allowed_are_refused(world: World) -> None:
    # 3 x (2**62 - 1) overflowed every bigint rollup of the tenant; now none is stored.
    events = [event(i, input_tokens=2**62 - 1) for i in range(3)]
    response = _post(world, events)
    assert response.status_code == 400
    assert [r["index"] for r in response.json()["rejected"]] == [0, 1, 2]
    assert _ids(world) == set()


@pytest.mark.parametrize("hours", [16, -20, 23])
def test_it_stores_an_offset_postgresql_cannot_in_utc(world: World, hours: int) -> None:
    at = _offset(hours)
    response = _post(world, [event("far", timestamp=at)])
    assert response.status_code == 202 and response.json()["accepted"] == 1
    row = UsageEvent.objects.for_tenant(world.tenant).get()
    assert row.timestamp == datetime.fromisoformat(at).astimezone(UTC)


def test_it_rounds_money_beyond_twelve_places_instead_of_failing(world: World) -> None:
    events = [{**event(1), **UNPRICED, "cost_usd": "1E-1000000"}, event(2)]
    response = _post(world, events)
    assert response.json()["accepted"] == 2
    row = UsageEvent.objects.for_tenant(world.tenant).get(event_id="evt-1")
    assert row.cost_usd == 0 and row.cost_source == "client"


@pytest.mark.parametrize("size", [2, 12], ids=["grouped-insert", "copy"])
def test_a_row_the_database_still_refuses_costs_only_its_own_event(world: World, size: int) -> None:
    # A constraint no rule of ingest knows of stands for any value PostgreSQL refuses.
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {UsageEvent._meta.db_table} ADD CONSTRAINT test_refused "
            "CHECK (model <> 'refused-by-db') NOT VALID"
        )
    events = [event(f"ok-{i}") for i in range(size - 1)]
    events.insert(1, event("bad", model="refused-by-db"))
    events.append(event("ok-0"))  # a duplicate in the batch still counts once
    response = _post(world, events)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (size - 1, 1)
    ((rejected,),) = [body["rejected"]]
    assert rejected["index"] == 1
    assert "refused by the database" in rejected["errors"]["non_field_errors"][0]
    assert _ids(world) == {f"evt-ok-{i}" for i in range(size - 1)}


def test_a_deadlock_is_a_conflict_to_retry_not_a_storage_outage() -> None:
    for cls in (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
        wrapped = OperationalError("deadlock detected")
        wrapped.__cause__ = cls("deadlock detected")
        assert is_transient_conflict(wrapped) and not is_storage_outage(wrapped)
    down = OperationalError("connection refused")
    down.__cause__ = psycopg.OperationalError("connection refused")
    assert is_storage_outage(down) and not is_transient_conflict(down)
