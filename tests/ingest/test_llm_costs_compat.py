"""The LLMCostTracker example of seeds/001 posts to `<host>/api/v1/metrics/llm-costs`."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

from django.test import Client

from ingest.models import UsageEvent
from tests.conftest import World, post_json

URL = "/api/v1/metrics/llm-costs"


def tracker_payload(cache_hit: bool = False, cache_tokens: int = 0) -> dict[str, Any]:
    """Exactly what `LLMCostTracker.track_call` builds (seeds/001), for gpt-4o-mini."""
    input_tokens, output_tokens = 1500, 450
    input_cost = (input_tokens / 1_000_000) * 0.15
    output_cost = (output_tokens / 1_000_000) * 0.60
    cache_savings = (cache_tokens / 1_000_000) * 0.15 if cache_hit and cache_tokens > 0 else 0
    total_cost = input_cost + output_cost - cache_savings
    return {
        "trace_id": str(uuid.uuid4()),
        "timestamp": time.time(),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "feature": "smart-reply",
        "user_id": "user_12345",
        "tokens": {
            "input": input_tokens,
            "output": output_tokens,
            "cache_hit": cache_hit,
            "cache_tokens": cache_tokens,
        },
        "costs": {
            "input_usd": round(input_cost, 6),
            "output_usd": round(output_cost, 6),
            "cache_savings_usd": round(cache_savings, 6),
            "total_usd": round(total_cost, 6),
        },
        "metadata": {"environment": "production", "version": "1.0.0"},
    }


def test_it_accepts_the_tracker_payload_byte_for_byte(world: World) -> None:
    payload = tracker_payload()
    # `requests.post(json=...)` serialises with json.dumps defaults: these exact bytes.
    response = post_json(Client(), URL, json.dumps(payload).encode(), world.ingest)
    assert response.status_code == 200
    row = UsageEvent.objects.for_tenant(world.tenant).get()
    assert row.event_id == payload["trace_id"]
    assert (row.input_tokens, row.output_tokens, row.feature) == (1500, 450, "smart-reply")
    assert row.user_id == "user_12345" and row.environment == "production"
    assert row.client_cost_usd == Decimal(str(payload["costs"]["total_usd"]))
    assert row.cost_source == "catalog"  # the catalog knows gpt-4o-mini and wins
    assert row.tags == {"version": "1.0.0"}


def test_it_counts_cache_tokens_only_on_a_cache_hit(world: World) -> None:
    post_json(Client(), URL, tracker_payload(cache_hit=True, cache_tokens=1000), world.ingest)
    post_json(Client(), URL, tracker_payload(cache_hit=False, cache_tokens=0), world.ingest)
    rows = UsageEvent.objects.for_tenant(world.tenant).order_by("cache_read_tokens")
    assert [r.cache_read_tokens for r in rows] == [0, 1000]


def test_it_never_counts_a_resent_trace_twice(world: World) -> None:
    payload = tracker_payload()
    for _ in range(2):
        assert post_json(Client(), URL, payload, world.ingest).status_code == 200
    assert UsageEvent.objects.for_tenant(world.tenant).count() == 1


def test_it_names_the_field_when_the_payload_is_incomplete(world: World) -> None:
    payload = tracker_payload()
    del payload["tokens"]
    response = post_json(Client(), URL, payload, world.ingest)
    assert response.status_code == 400
    assert set(response.json()["rejected"][0]["errors"]) == {"input_tokens", "output_tokens"}


def test_it_needs_an_ingest_key(world: World) -> None:
    assert post_json(Client(), URL, tracker_payload()).status_code == 401
    assert post_json(Client(), URL, tracker_payload(), world.read).status_code == 403
