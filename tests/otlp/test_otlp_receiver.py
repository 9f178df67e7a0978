"""`POST /v1/traces` through Django's test client: encodings, mapping and OTLP answers."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from google.protobuf import json_format

from pricing.catalog import TokenCounts, reference_cost
from tenants.models import ApiKey
from tests.conftest import World
from tests.otlp.helpers import (
    JSON,
    at_microsecond,
    export_request,
    export_response,
    genai_attributes,
    post_otlp,
    post_request,
    span,
    status_of,
    stored,
)


def test_it_stores_a_genai_span_as_a_priced_usage_event(world: World) -> None:
    end_ns = 1_780_000_000_123_456_789  # 2026-05-28, with sub-microsecond digits
    attrs = genai_attributes(
        **{
            "gen_ai.usage.cache_read.input_tokens": 1024,
            "enduser.id": "user-42",
            "http.response.status_code": 200,
        }
    )
    chat = span(attrs, span_id=bytes.fromhex("00f067aa0ba902b7"), end_ns=end_ns)
    resource = {"deployment.environment.name": "staging", "costboard.team": "search"}
    response = post_request(export_request([chat], resource), world.ingest)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    assert not export_response(response).HasField("partial_success")
    (row,) = stored(world.tenant)
    assert row.event_id == "00f067aa0ba902b7"
    assert (row.provider, row.model) == ("openai", "gpt-4o-mini-2024-07-18")
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens) == (1200, 300, 1024)
    assert (row.feature, row.environment, row.user_id) == ("smart-reply", "staging", "user-42")
    assert row.team_id == world.team.pk
    assert row.timestamp == at_microsecond(end_ns)
    assert row.latency_ms == pytest.approx(850)
    assert row.status_code == 200
    assert row.tags == {"operation": "chat", "trace_id": chat.trace_id.hex()}
    expected = reference_cost("openai", "gpt-4o-mini", TokenCounts(1200, 300, 1024), row.timestamp)
    assert row.cost_source == "catalog" and row.cost_usd == expected


def test_it_accepts_otlp_json_with_hex_ids_and_answers_in_json(world: World) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "search"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "opentelemetry.instrumentation.anthropic"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "eee19b7ec3c1b173",
                                "name": "chat claude-sonnet-4-0",
                                "kind": 3,
                                "startTimeUnixNano": "1780000000000000000",
                                "endTimeUnixNano": "1780000002500000000",
                                "attributes": [
                                    {"key": "gen_ai.system", "value": {"stringValue": "anthropic"}},
                                    {
                                        "key": "gen_ai.request.model",
                                        "value": {"stringValue": "claude-sonnet-4-20250514"},
                                    },
                                    {
                                        "key": "gen_ai.usage.input_tokens",
                                        "value": {"intValue": "900"},
                                    },
                                    {
                                        "key": "gen_ai.usage.output_tokens",
                                        "value": {"intValue": 80},
                                    },
                                ],
                                "status": {},
                                "someFieldFromTheFuture": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = post_otlp(json.dumps(body), world.ingest, content_type=JSON)

    assert response.status_code == 200
    assert response["Content-Type"] == JSON and response.json() == {}
    (row,) = stored(world.tenant)
    assert row.event_id == "eee19b7ec3c1b174"
    assert row.tags["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert (row.provider, row.model, row.feature) == (
        "anthropic",
        "claude-sonnet-4-20250514",
        "search",
    )
    assert (row.input_tokens, row.output_tokens, row.latency_ms) == (900, 80, 2500)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_it_accepts_compressed_bodies(world: World, coding: str) -> None:
    raw = export_request([span(genai_attributes())]).SerializeToString()
    body = gzip.compress(raw) if coding == "gzip" else zlib.compress(raw)
    response = post_otlp(body, world.ingest, HTTP_CONTENT_ENCODING=coding)
    assert response.status_code == 200
    assert len(stored(world.tenant)) == 1


def test_it_accepts_gzipped_otlp_json(world: World) -> None:
    request = export_request([span(genai_attributes(), span_id=bytes.fromhex("1122334455667788"))])
    payload = json.loads(json_format.MessageToJson(request))
    # OTLP/JSON ids are hex: what protobuf's own JSON mapping wrote as base64, a sender sends hex.
    spans = payload["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["spanId"], spans[0]["traceId"] = "1122334455667788", "ab" * 16
    body = gzip.compress(json.dumps(payload).encode())
    response = post_otlp(body, world.ingest, content_type=JSON, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert [e.event_id for e in stored(world.tenant)] == ["1122334455667788"]


def test_it_ignores_spans_without_genai_usage(world: World) -> None:
    http_span = span({"http.request.method": "GET", "url.full": "https://example.com/"})
    no_usage = span({"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"})
    chat = span(genai_attributes())
    response = post_request(export_request([http_span, no_usage, chat]), world.ingest)
    assert response.status_code == 200
    assert not export_response(response).HasField("partial_success")
    assert [e.event_id for e in stored(world.tenant)] == [chat.span_id.hex()]


def test_it_counts_an_agent_s_model_calls_not_the_agent_s_total_as_well(world: World) -> None:
    # In-process agent: its usage is the sum of its chat spans, which are counted themselves.
    local_agent = span(genai_attributes(**{"gen_ai.operation.name": "invoke_agent"}))
    local_agent.kind = local_agent.SPAN_KIND_INTERNAL
    chat = span(genai_attributes())
    # A remote agent (a CLIENT span) made its model calls elsewhere: its usage is all there is.
    remote_agent = span(genai_attributes(**{"gen_ai.operation.name": "invoke_agent"}))
    post_request(export_request([local_agent, chat, remote_agent]), world.ingest)
    counted = {e.event_id for e in stored(world.tenant)}
    assert counted == {chat.span_id.hex(), remote_agent.span_id.hex()}


def test_it_answers_an_export_without_genai_spans_with_an_empty_success(world: World) -> None:
    response = post_request(export_request([span({"db.system": "postgresql"})]), world.ingest)
    assert response.status_code == 200 and response.content == b""
    assert stored(world.tenant) == []


def test_it_never_counts_a_resent_export_twice(world: World) -> None:
    request = export_request([span(genai_attributes()), span(genai_attributes())])
    for _ in range(3):  # an exporter retrying after a lost answer
        assert post_request(request, world.ingest).status_code == 200
    assert len(stored(world.tenant)) == 2


def test_it_adds_anthropic_cache_tokens_that_input_tokens_left_out(world: World) -> None:
    # Anthropic's API counts cache reads and writes outside input_tokens; instrumentations
    # that pass its numbers on report more cached tokens than input tokens.
    raw_anthropic = genai_attributes(
        **{
            "gen_ai.provider.name": "anthropic",
            "gen_ai.response.model": "claude-sonnet-4-20250514",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.cache_read.input_tokens": 2000,
            "gen_ai.usage.cache_creation.input_tokens": 500,
        }
    )
    # Following the conventions, input_tokens already includes the cached ones.
    conventional = genai_attributes(
        **{
            "gen_ai.usage.input_tokens": 3000,
            "gen_ai.usage.cache_read_input_tokens": 1000,
            "gen_ai.usage.cache_creation_input_tokens": 200,
        }
    )
    post_request(export_request([span(raw_anthropic), span(conventional)]), world.ingest)
    rows = {e.provider: e for e in stored(world.tenant)}
    anthropic = rows["anthropic"]
    assert (anthropic.input_tokens, anthropic.cache_read_tokens, anthropic.cache_write_tokens) == (
        2512,
        2000,
        500,
    )
    expected = reference_cost(
        "anthropic",
        "claude-sonnet-4-20250514",
        TokenCounts(2512, 300, 2000, 500),
        anthropic.timestamp,
    )
    assert anthropic.cost_usd == expected
    openai = rows["openai"]
    assert (openai.input_tokens, openai.cache_read_tokens, openai.cache_write_tokens) == (
        3000,
        1000,
        200,
    )


def test_it_reads_the_older_attribute_names(world: World) -> None:
    attrs = {
        "gen_ai.system": "aws.bedrock",
        "gen_ai.request.model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "gen_ai.usage.prompt_tokens": 700,
        "gen_ai.usage.completion_tokens": 70,
        "user.id": "u-7",
    }
    post_request(export_request([span(attrs)], {"deployment.environment": "dev"}), world.ingest)
    (row,) = stored(world.tenant)
    assert (row.provider, row.input_tokens, row.output_tokens) == ("bedrock", 700, 70)
    assert (row.environment, row.user_id) == ("dev", "u-7")
    assert row.cost_source == "catalog"


def test_it_prefers_an_explicit_feature_and_ignores_the_sdk_default_service_name(
    world: World,
) -> None:
    on_span = span(genai_attributes(**{"costboard.feature": "summaries"}))
    post_request(export_request([on_span], {"costboard.feature": "resource-feature"}), world.ingest)
    post_request(
        export_request([span(genai_attributes())], {"service.name": "unknown_service:python"}),
        world.ingest,
    )
    post_request(
        export_request([span(genai_attributes())], {"costboard.feature": "resource-feature"}),
        world.ingest,
    )
    assert sorted(e.feature for e in stored(world.tenant)) == ["", "resource-feature", "summaries"]


@pytest.mark.parametrize(
    ("attrs", "error", "status_code"),
    [
        ({}, True, 500),
        ({"error.type": "429"}, True, 429),
        ({"error.type": "openai.RateLimitError"}, False, 500),
        ({"http.response.status_code": 503}, True, 503),
        ({}, False, 200),
    ],
)
def test_it_maps_failed_calls_to_status_codes(
    world: World, attrs: dict, error: bool, status_code: int
) -> None:
    post_request(export_request([span(genai_attributes(**attrs), error=error)]), world.ingest)
    (row,) = stored(world.tenant)
    assert row.status_code == status_code


def test_it_reports_partial_success_for_invalid_genai_spans(world: World) -> None:
    good = span(genai_attributes())
    negative = span(genai_attributes(**{"gen_ai.usage.input_tokens": -5}))
    no_model = span(
        genai_attributes(**{"gen_ai.request.model": None, "gen_ai.response.model": None})
    )
    unknown_team = span(genai_attributes(**{"costboard.team": "nope"}))
    request = export_request([good, negative, no_model, unknown_team, span({"http.route": "/"})])
    response = post_request(request, world.ingest)

    assert response.status_code == 200
    partial = export_response(response).partial_success
    assert partial.rejected_spans == 3
    message = partial.error_message
    assert message.startswith("3 of 4 GenAI spans rejected")
    assert f"span {negative.span_id.hex()}: input_tokens (gen_ai.usage.input_tokens)" in message
    assert f"span {no_model.span_id.hex()}: model" in message
    assert "unknown team 'nope'" in message
    assert [e.event_id for e in stored(world.tenant)] == [good.span_id.hex()]


def test_it_reports_partial_success_in_json_for_a_json_request(world: World) -> None:
    request = export_request([span(genai_attributes(**{"gen_ai.usage.output_tokens": -1}))])
    payload = json.loads(json_format.MessageToJson(request))
    for s in payload["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        s["spanId"], s["traceId"] = "aa" * 8, "bb" * 16
    response = post_otlp(json.dumps(payload), world.ingest, content_type=JSON)
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] in (1, "1")
    assert "aaaaaaaaaaaaaaaa" in response.json()["partialSuccess"]["errorMessage"]
    assert stored(world.tenant) == []


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "detail"),
    [
        (b"\xff\xff\xff\xff garbage", "application/x-protobuf", None, "not an OTLP"),
        (b"\x1f\x8b\x08\x00 truncated gzip", "application/x-protobuf", "gzip", "not valid gzip"),
        (gzip.compress(b"x" * 100)[:-8], "application/x-protobuf", "gzip", "not valid gzip"),
        (b"{not json", JSON, None, "not valid JSON"),
        (b"[1, 2, 3]", JSON, None, "ExportTraceServiceRequest"),
        # Nested 100,000 deep: too deep for any JSON parser here, answered as the REST path does.
        (b"[" * 100_000 + b"]" * 100_000, JSON, None, "nested too deeply"),
        (b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON, None, "deeply"),
        (b'{"resourceSpans": "nope"}', JSON, None, "ExportTraceServiceRequest"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "not-hex"}]}]}]}',
            JSON,
            None,
            "hex",
        ),
    ],
)
def test_it_answers_400_for_malformed_bodies_and_stores_nothing(
    world: World, body: bytes, content_type: str, encoding: str | None, detail: str
) -> None:
    headers = {"HTTP_CONTENT_ENCODING": encoding} if encoding else {}
    response = post_otlp(body, world.ingest, content_type=content_type, **headers)
    assert response.status_code == 400
    assert response["Content-Type"] == content_type
    assert detail in status_of(response).message
    assert stored(world.tenant) == []


def test_it_answers_415_for_other_content_types_and_encodings(world: World) -> None:
    body = export_request([span(genai_attributes())]).SerializeToString()
    assert post_otlp(body, world.ingest, content_type="text/plain").status_code == 415
    response = post_otlp(body, world.ingest, HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415
    assert "gzip" in status_of(response).message
    assert stored(world.tenant) == []


def test_it_answers_401_with_an_otlp_status_without_a_valid_key(world: World) -> None:
    body = export_request([span(genai_attributes())]).SerializeToString()
    missing = post_otlp(body, None)
    unknown = post_otlp(body, None, HTTP_AUTHORIZATION="Bearer cb_nope_nope")
    assert missing.status_code == 401 and unknown.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert "unknown" in status_of(unknown).message
    assert stored(world.tenant) == []


def test_it_answers_403_for_a_read_key(world: World) -> None:
    response = post_request(export_request([span(genai_attributes())]), world.read)
    assert response.status_code == 403
    assert "ingest" in status_of(response).message


def test_it_answers_413_over_five_mebibytes_on_the_wire_or_twenty_decompressed(
    world: World,
) -> None:
    big = export_request([span(genai_attributes(**{"padding": "x" * (5 * 1024 * 1024)}))])
    assert post_request(big, world.ingest).status_code == 413
    bomb = gzip.compress(b"\x00" * (21 * 1024 * 1024))  # ~20 KiB on the wire
    response = post_otlp(bomb, world.ingest, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert "decompressed" in status_of(response).message
    assert stored(world.tenant) == []


def test_it_answers_429_with_retry_after_past_the_key_rate_limit(world: World) -> None:
    ApiKey.objects.for_tenant(world.tenant).filter(pk=world.ingest.key.pk).update(
        rate_limit_per_minute=1
    )
    request = export_request([span(genai_attributes())])
    assert post_request(request, world.ingest).status_code == 200
    limited = post_request(export_request([span(genai_attributes())]), world.ingest)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert len(stored(world.tenant)) == 1


def test_it_keeps_tenants_apart(world: World) -> None:
    chat = span(genai_attributes(), span_id=bytes.fromhex("0102030405060708"))
    request = export_request([chat], {"costboard.team": "search"})
    post_request(request, world.ingest)
    post_request(request, world.other_ingest)  # same span id, another tenant: its own event
    (ours,), (theirs,) = stored(world.tenant), stored(world.other_tenant)
    assert ours.event_id == theirs.event_id == "0102030405060708"
    assert (ours.team_id, theirs.team_id) == (world.team.pk, world.other_team.pk)
