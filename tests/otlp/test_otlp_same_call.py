"""One provider call traced by two instrumentations is one usage event, priced once."""

from __future__ import annotations

from pricing.catalog import TokenCounts, reference_cost
from tests.conftest import World
from tests.otlp.helpers import export_request, genai_attributes, post_request, span, stored

CLAUDE = "claude-sonnet-4-20250514"


def anthropic_sdk_span(response_id: str = "msg_01", **overrides: int) -> dict:
    """The span the anthropic SDK makes of its own call (its built-in tracing)."""
    attrs = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": CLAUDE,
        "gen_ai.response.model": CLAUDE,
        "gen_ai.response.id": response_id,
        "gen_ai.usage.input_tokens": 2500,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 1024,
        "gen_ai.usage.cache_write.input_tokens": 700,
        **overrides,
    }
    return genai_attributes(**attrs)


def openllmetry_span(response_id: str = "msg_01") -> dict:
    """OpenLLMetry's span of the same call, in a trace of its own."""
    attrs = anthropic_sdk_span(response_id)
    attrs["gen_ai.usage.cache_creation.input_tokens"] = attrs.pop(
        "gen_ai.usage.cache_write.input_tokens"
    )
    return attrs


def test_it_counts_a_call_traced_twice_once(world: World) -> None:
    request = export_request([span(anthropic_sdk_span()), span(openllmetry_span())])
    assert post_request(request, world.ingest).status_code == 200
    (event,) = stored(world.tenant)
    tokens = TokenCounts(2500, 300, 1024, 700)
    stored_tokens = (
        event.input_tokens,
        event.output_tokens,
        event.cache_read_tokens,
        event.cache_write_tokens,
    )
    assert stored_tokens == tokens
    assert event.cost_usd == reference_cost("anthropic", CLAUDE, tokens, event.timestamp)
    assert stored(world.other_tenant) == []


def test_it_reads_the_anthropic_sdk_s_cache_write_attribute(world: World) -> None:
    post_request(export_request([span(anthropic_sdk_span())]), world.ingest)
    (event,) = stored(world.tenant)
    assert (event.cache_read_tokens, event.cache_write_tokens) == (1024, 700)


def test_it_keeps_calls_with_other_response_ids_or_other_counts(world: World) -> None:
    spans = [
        span(anthropic_sdk_span("msg_01")),
        span(anthropic_sdk_span("msg_02")),  # another call, same usage
        span(anthropic_sdk_span("msg_01", **{"gen_ai.usage.output_tokens": 301})),
        span(genai_attributes()),  # no response id: nothing to compare
        span(genai_attributes()),
    ]
    assert post_request(export_request(spans), world.ingest).status_code == 200
    assert len(stored(world.tenant)) == 5
