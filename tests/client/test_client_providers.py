"""Usage read from real OpenAI and Anthropic SDK response objects, as the server receives it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from anthropic.types import Message
from costboard_client import CostboardClient
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from ingest.models import UsageEvent
from pricing.catalog import TokenCounts, reference_cost
from tests.client.servers import Front, serve
from tests.conftest import World
from tests.server import web_server
from tests.worker import test_database_url as server_database_url

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1780000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}}
    ],
    "usage": {
        "prompt_tokens": 1500,
        "completion_tokens": 450,
        "total_tokens": 1950,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}
RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1780000000,
    "model": "o4-mini-2025-04-16",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 2000,
        "output_tokens": 800,
        "total_tokens": 2800,
        "input_tokens_details": {"cached_tokens": 512, "cache_write_tokens": 256},
        "output_tokens_details": {"reasoning_tokens": 640},
    },
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-20250514",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "output_tokens": 300,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 500,
    },
}


@pytest.fixture
def sent() -> Iterator[tuple[CostboardClient, Front]]:
    front = Front()
    with serve(front) as url:
        client = CostboardClient("cb_abc_def", url, flush_interval=0.05, flush_at_exit=False)
        yield client, front
        client.close(timeout=5)


def only_event(client: CostboardClient, front: Front) -> dict[str, Any]:
    assert client.flush(timeout=5)
    (event,) = front.events
    return event


def tokens(event: dict[str, Any]) -> tuple[int, int, int, int]:
    names = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    return tuple(event[n] for n in names)  # type: ignore[return-value]


def test_it_records_an_openai_chat_completion(sent: tuple[CostboardClient, Front]) -> None:
    client, front = sent
    completion = ChatCompletion.model_validate(CHAT)
    event_id = client.record_openai(
        completion, feature="smart-reply", user_id="u-42", latency_ms=812
    )
    event = only_event(client, front)
    assert event["event_id"] == event_id
    assert (event["provider"], event["model"]) == ("openai", "gpt-4o-mini-2024-07-18")
    # prompt_tokens already include the cached ones, as Costboard's input_tokens do
    assert tokens(event) == (1500, 450, 1024, 0)
    assert (event["feature"], event["user_id"], event["latency_ms"]) == ("smart-reply", "u-42", 812)


def test_it_records_an_openai_responses_api_response(sent: tuple[CostboardClient, Front]) -> None:
    client, front = sent
    client.record_openai(Response.model_validate(RESPONSE), feature="agent")
    event = only_event(client, front)
    assert event["model"] == "o4-mini-2025-04-16"
    assert tokens(event) == (2000, 800, 512, 256)  # reasoning tokens are output tokens


def test_it_records_azure_openai_and_embeddings(sent: tuple[CostboardClient, Front]) -> None:
    client, front = sent
    embeddings = CreateEmbeddingResponse.model_validate(
        {
            "object": "list",
            "data": [],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 64, "total_tokens": 64},
        }
    )
    client.record_openai(embeddings, provider="azure", feature="search")
    event = only_event(client, front)
    assert (event["provider"], event["model"]) == ("azure", "text-embedding-3-small")
    assert tokens(event) == (64, 0, 0, 0)


def test_it_counts_anthropic_cache_tokens_as_input(sent: tuple[CostboardClient, Front]) -> None:
    client, front = sent
    client.record_anthropic(Message.model_validate(MESSAGE), feature="support", team="search")
    event = only_event(client, front)
    assert (event["provider"], event["model"]) == ("anthropic", "claude-sonnet-4-20250514")
    # Anthropic's input_tokens (12) leaves out cache reads (2000) and writes (500).
    assert tokens(event) == (2512, 300, 2000, 500)
    assert event["team"] == "search"


def test_it_reads_an_anthropic_message_without_cache_activity(
    sent: tuple[CostboardClient, Front],
) -> None:
    client, front = sent
    plain = {**MESSAGE, "usage": {"input_tokens": 40, "output_tokens": 9}}
    client.record_anthropic(Message.model_validate(plain))
    assert tokens(only_event(client, front)) == (40, 9, 0, 0)


def test_it_reads_responses_given_as_dicts(sent: tuple[CostboardClient, Front]) -> None:
    client, front = sent
    client.record_openai(CHAT)  # e.g. a raw JSON response or model_dump()
    client.record_anthropic(MESSAGE)
    assert client.flush(timeout=5)
    assert [tokens(e) for e in front.events] == [(1500, 450, 1024, 0), (2512, 300, 2000, 500)]


def test_it_skips_a_response_without_usage(sent: tuple[CostboardClient, Front]) -> None:
    client, front = sent
    chunk = {**CHAT, "usage": None}  # a stream chunk before the last one
    assert client.record_openai(ChatCompletion.model_validate(chunk)) is None
    assert client.record_anthropic({"model": "claude"}) is None
    assert client.flush(timeout=1) and front.events == []
    assert client.stats()["dropped"] == 2


@pytest.mark.django_db(transaction=True)
def test_it_prices_recorded_responses_on_a_live_server(world: World) -> None:
    with web_server({"DATABASE_URL": server_database_url()}, workers=1) as base:
        client = CostboardClient(world.ingest.token, base, timeout=60, flush_at_exit=False)
        chat_id = client.record_openai(ChatCompletion.model_validate(CHAT), feature="reply")
        claude_id = client.record_anthropic(Message.model_validate(MESSAGE), feature="reply")
        assert client.flush(timeout=60)
        client.close()
    rows = {e.event_id: e for e in UsageEvent.objects.for_tenant(world.tenant)}
    chat, claude = rows[chat_id], rows[claude_id]
    assert chat.cost_usd == reference_cost(
        "openai", "gpt-4o-mini", TokenCounts(1500, 450, 1024), chat.timestamp
    )
    assert claude.cost_usd == reference_cost(
        "anthropic", "claude-sonnet-4-20250514", TokenCounts(2512, 300, 2000, 500), claude.timestamp
    )
    assert {chat.cost_source, claude.cost_source} == {"catalog"}
