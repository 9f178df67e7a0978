from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from ingest.models import UsageEvent
from pricing.catalog import TokenCounts, reference_cost
from tenants.models import ApiKey
from tenants.services import revoke_api_key
from tests.conftest import World, event, post_json

pytestmark = pytest.mark.usefixtures("long_retention")  # events of fixed 2025 dates

URL = "/api/v1/events"


def stored(world_tenant) -> list[UsageEvent]:
    return list(UsageEvent.objects.for_tenant(world_tenant).order_by("event_id"))


def test_it_accepts_one_event_and_prices_it_from_the_catalog(world: World) -> None:
    at = datetime(2025, 6, 1, 12, tzinfo=UTC)
    body = event(1, timestamp=at.isoformat(), cache_read_tokens=200, feature="rag")
    response = post_json(Client(), URL, body, world.ingest)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    (row,) = stored(world.tenant)
    expected = reference_cost("openai", "gpt-4o", TokenCounts(1000, 500, 200), at)
    assert row.cost_usd == expected and isinstance(row.cost_usd, Decimal)
    assert row.cost_source == "catalog"
    assert row.team_id == world.team.pk  # the key's team by default
    assert (row.feature, row.environment, row.status_code) == ("rag", "production", 200)


def test_it_stores_exactly_the_valid_events_of_a_mixed_batch(world: World) -> None:
    batch = [
        event(1),
        event(2, input_tokens=-5),
        event(3, provider=None, output_tokens="many"),
        event(4, team="search", timestamp=1748779200),
        event(5, team="nope"),
        "not an object",
    ]
    response = post_json(Client(), URL, {"events": batch}, world.ingest)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    errors = {r["index"]: r["errors"] for r in body["rejected"]}
    assert errors[1] == {"input_tokens": ["must be zero or more"]}
    assert set(errors[2]) == {"provider", "output_tokens"}
    assert "unknown team" in errors[4]["team"][0]
    assert "non_field_errors" in errors[5]
    assert [e.event_id for e in stored(world.tenant)] == ["evt-1", "evt-4"]


def test_it_names_a_field_holding_a_nul_character_and_keeps_the_others(world: World) -> None:
    # PostgreSQL's text cannot store NUL: a 400 naming the field, never a 500.
    batch = [event(1), event(2, feature="chat\x00bot"), event(3, tags={"k": "v\x00"})]
    response = post_json(Client(), URL, {"events": batch}, world.ingest)
    assert response.status_code == 202
    errors = {r["index"]: r["errors"] for r in response.json()["rejected"]}
    assert errors == {
        1: {"feature": ["must not contain NUL characters"]},
        2: {"tags": ["must not contain NUL characters"]},
    }
    assert [e.event_id for e in stored(world.tenant)] == ["evt-1"]
    alone = post_json(Client(), URL, event(4, user_id="\x00"), world.ingest)
    assert alone.status_code == 400
    assert alone.json()["rejected"][0]["errors"] == {"user_id": ["must not contain NUL characters"]}


def test_it_names_a_latency_too_large_for_a_number_and_keeps_the_others(world: World) -> None:
    # 1e400 is infinite as a float and 10**400 does not fit one: a 400 naming the field.
    huge = json.dumps(event(2)).replace('"event_id"', '"latency_ms": 1e400, "event_id"')
    vast = json.dumps(event(3)).replace('"event_id"', f'"latency_ms": 1{"0" * 400}, "event_id"')
    body = f'{{"events": [{json.dumps(event(1))}, {huge}, {vast}]}}'
    response = post_json(Client(), URL, body, world.ingest)
    assert response.status_code == 202
    errors = {r["index"]: r["errors"] for r in response.json()["rejected"]}
    too_large = {"latency_ms": ["must be a finite number of milliseconds"]}
    assert errors == {1: too_large, 2: too_large}
    assert [e.event_id for e in stored(world.tenant)] == ["evt-1"]


def test_it_answers_400_for_a_body_nested_too_deeply(world: World) -> None:
    deep = json.dumps(event(1))[:-1] + ', "note": ' + "[" * 5000 + "]" * 5000 + "}"
    response = post_json(Client(), URL, deep, world.ingest)
    assert response.status_code == 400
    assert response.json() == {"detail": "body is not valid JSON: nested too deeply"}
    assert stored(world.tenant) == []


def test_it_counts_duplicates_and_never_stores_them_twice(world: World) -> None:
    client = Client()
    first = post_json(client, URL, {"events": [event(1), event(1), event(2)]}, world.ingest)
    assert first.json()["accepted"] == 2 and first.json()["duplicates"] == 1
    again = post_json(client, URL, {"events": [event(2), event(3)]}, world.ingest)
    assert again.status_code == 202
    assert again.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert len(stored(world.tenant)) == 3


def test_it_lets_two_tenants_use_the_same_event_id(world: World) -> None:
    assert post_json(Client(), URL, event(1), world.ingest).json()["accepted"] == 1
    assert post_json(Client(), URL, event(1), world.other_ingest).json()["accepted"] == 1
    assert len(stored(world.tenant)) == 1 and len(stored(world.other_tenant)) == 1


def test_it_never_writes_into_another_tenant(world: World) -> None:
    # "search" exists in both tenants: the key's tenant decides, never the body.
    post_json(Client(), URL, event(1, team="search"), world.other_ingest)
    (row,) = stored(world.other_tenant)
    assert row.team_id == world.other_team.pk
    assert stored(world.tenant) == []


@pytest.mark.parametrize(
    ("header", "detail"),
    [(None, "credentials"), ("Bearer cb_nope_nope", "unknown"), ("Bearer garbage", "unknown")],
)
def test_it_answers_401_without_a_valid_key(world: World, header: str | None, detail: str) -> None:
    extra: dict[str, Any] = {"HTTP_AUTHORIZATION": header} if header else {}
    response = post_json(Client(), URL, event(1), **extra)
    assert response.status_code == 401
    assert detail in response.json()["detail"]
    assert stored(world.tenant) == []


def test_it_answers_401_for_a_revoked_key(world: World) -> None:
    revoke_api_key(world.ingest.key)
    assert post_json(Client(), URL, event(1), world.ingest).status_code == 401


def test_it_answers_403_for_a_read_key(world: World) -> None:
    response = post_json(Client(), URL, event(1), world.read)
    assert response.status_code == 403
    assert "ingest" in response.json()["detail"]


def test_it_answers_400_when_the_body_is_not_json(world: World) -> None:
    response = post_json(Client(), URL, b"{not json", world.ingest)
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_it_answers_400_when_nothing_is_valid(world: World) -> None:
    response = post_json(Client(), URL, {"events": [event(1, model="")]}, world.ingest)
    assert response.status_code == 400
    assert response.json()["rejected"][0]["errors"] == {"model": ["is required"]}


def test_it_rejects_events_more_than_five_minutes_in_the_future(world: World) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=4)
    later = datetime.now(UTC) + timedelta(minutes=6)
    batch = [event(1, timestamp=soon.isoformat()), event(2, timestamp=later.isoformat())]
    body = post_json(Client(), URL, {"events": batch}, world.ingest).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["errors"] == {"timestamp": ["is more than 5 minutes in the future"]}


def test_it_answers_413_over_a_thousand_events(world: World) -> None:
    response = post_json(Client(), URL, {"events": [event(i) for i in range(1001)]}, world.ingest)
    assert response.status_code == 413
    assert stored(world.tenant) == []


def test_it_answers_413_over_five_mebibytes(world: World) -> None:
    padding = "x" * (5 * 1024 * 1024)
    response = post_json(Client(), URL, event(1, feature=padding), world.ingest)
    assert response.status_code == 413


def test_it_answers_429_with_retry_after_past_the_key_rate_limit(world: World) -> None:
    ApiKey.objects.for_tenant(world.tenant).filter(pk=world.ingest.key.pk).update(
        rate_limit_per_minute=2
    )
    client = Client()
    codes = [post_json(client, URL, event(i), world.ingest).status_code for i in range(3)]
    assert codes == [202, 202, 429]
    limited = post_json(client, URL, event(9), world.ingest)
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert len(stored(world.tenant)) == 2
    # Another key of the same tenant has its own budget.
    assert post_json(client, URL, event(10), world.other_ingest).status_code == 202


def test_it_keeps_client_money_exact_without_floats(world: World) -> None:
    raw = '{"event_id": "x", "provider": "inhouse", "model": "m1", "input_tokens": 1, "output_tokens": 1, "cost_usd": 399.123456789012}'
    assert post_json(Client(), URL, raw, world.ingest).status_code == 202
    (row,) = stored(world.tenant)
    assert row.cost_source == "client"
    assert row.cost_usd == Decimal("399.123456789012")


def test_it_stores_unknown_models_as_unpriced(world: World) -> None:
    post_json(Client(), URL, event(1, provider="acme", model="secret-llm"), world.ingest)
    (row,) = stored(world.tenant)
    assert (row.cost_usd, row.cost_source) == (Decimal(0), "unpriced")


def test_it_names_every_bad_field(world: World) -> None:
    bad = event(
        1,
        event_id="x" * 129,
        timestamp="yesterday",
        latency_ms=-1,
        status_code="ok",
        cost_usd="-1",
        tags={"a": 1},
        cache_read_tokens=True,
        environment=5,
    )
    body = post_json(Client(), URL, bad, world.ingest).json()
    assert set(body["rejected"][0]["errors"]) == {
        "event_id",
        "timestamp",
        "latency_ms",
        "status_code",
        "cost_usd",
        "tags",
        "cache_read_tokens",
        "environment",
    }


def test_it_rejects_cache_tokens_above_input_tokens(world: World) -> None:
    body = post_json(Client(), URL, event(1, input_tokens=10, cache_read_tokens=11), world.ingest)
    assert "cache_read_tokens" in body.json()["rejected"][0]["errors"]


def test_it_stores_tags_and_optional_fields(world: World) -> None:
    fields = {"tags": {"version": "2"}, "user_id": "u-1", "endpoint": "/chat", "latency_ms": 812.5}
    post_json(
        Client(), URL, event(1, environment="staging", status_code=429, **fields), world.ingest
    )
    (row,) = stored(world.tenant)
    assert (row.tags, row.user_id, row.endpoint) == ({"version": "2"}, "u-1", "/chat")
    assert (row.latency_ms, row.environment, row.status_code) == (812.5, "staging", 429)


def test_it_accepts_json_events_wrapper_only_as_a_list(world: World) -> None:
    response = post_json(Client(), URL, {"events": {"a": 1}}, world.ingest)
    assert response.status_code == 400
    assert json.loads(response.content)["detail"].startswith("events must be a list")


def test_it_refuses_nan_and_infinity(world: World) -> None:
    raw = '{"provider": "openai", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1, "latency_ms": NaN}'
    response = post_json(Client(), URL, raw, world.ingest)
    assert response.status_code == 400
    assert "NaN" in response.json()["detail"]
