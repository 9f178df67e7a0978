"""The real OpenTelemetry SDK and its OTLP/HTTP exporter, pointed at a live Costboard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from pricing.catalog import TokenCounts, reference_cost
from tests.conftest import World, login
from tests.otlp.helpers import at_microsecond, export_request, genai_attributes, span, stored
from tests.server import web_server
from tests.worker import celery_worker, wait_until
from tests.worker import test_database_url as server_database_url

RESOURCE = {
    "service.name": "support-bot",
    "deployment.environment.name": "staging",
    "costboard.team": "search",
}


@contextmanager
def otel_pointed_at(
    base: str, token: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TracerProvider, OTLPSpanExporter, InMemorySpanExporter]]:
    """A tracer provider configured the way the README tells users to: environment only."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{token}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    # A fresh server's first request loads the price catalog, slowly on a busy machine; the
    # exporter's default 10 s budget (retries included) would lose spans over a cold start.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "60")
    exporter = OTLPSpanExporter()
    memory = InMemorySpanExporter()  # keeps what was exported, to export it again
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    try:
        yield provider, exporter, memory
    finally:
        provider.shutdown()


def instrumented_calls(provider: TracerProvider) -> None:
    """What GenAI instrumentation records around two LLM calls inside a request."""
    tracer = provider.get_tracer("costboard.tests")
    with tracer.start_as_current_span("POST /reply", kind=SpanKind.SERVER) as request:
        request.set_attribute("http.route", "/reply")
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                    "gen_ai.usage.input_tokens": 1500,
                    "gen_ai.usage.output_tokens": 450,
                    "gen_ai.usage.cache_read.input_tokens": 1024,
                    "enduser.id": "user-12345",
                }
            )
        with tracer.start_as_current_span("chat claude", kind=SpanKind.CLIENT) as claude:
            claude.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "anthropic",
                    "gen_ai.request.model": "claude-sonnet-4-20250514",
                    "gen_ai.usage.input_tokens": 3000,
                    "gen_ai.usage.cache_creation.input_tokens": 2000,
                    "gen_ai.usage.output_tokens": 200,
                    "error.type": "overloaded_error",
                    "costboard.feature": "escalation",
                }
            )
            claude.set_status(Status(StatusCode.ERROR, "overloaded"))


def span_id(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")


@pytest.mark.django_db(transaction=True)
def test_it_stores_genai_spans_exported_by_the_opentelemetry_sdk(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        web_server({"DATABASE_URL": server_database_url()}, workers=2) as base,
        otel_pointed_at(base, world.ingest.token, monkeypatch) as (provider, exporter, memory),
    ):
        instrumented_calls(provider)
        assert provider.force_flush(timeout_millis=90_000)
        spans = {s.name: s for s in memory.get_finished_spans()}
        first = {e.event_id: e for e in stored(world.tenant)}
        # An exporter that lost the answer sends the same spans again: nothing doubles.
        assert exporter.export(list(spans.values())) is SpanExportResult.SUCCESS

    assert set(spans) == {"POST /reply", "chat gpt-4o-mini", "chat claude"}
    rows = {e.event_id: e for e in stored(world.tenant)}
    assert (
        rows.keys()
        == first.keys()
        == {span_id(spans["chat gpt-4o-mini"]), span_id(spans["chat claude"])}
    )

    chat = rows[span_id(spans["chat gpt-4o-mini"])]
    assert (chat.provider, chat.model) == ("openai", "gpt-4o-mini-2024-07-18")
    assert (chat.input_tokens, chat.output_tokens, chat.cache_read_tokens) == (1500, 450, 1024)
    assert (chat.feature, chat.environment, chat.team_id) == (
        "support-bot",
        "staging",
        world.team.pk,
    )
    assert (chat.user_id, chat.status_code, chat.tags["operation"]) == ("user-12345", 200, "chat")
    end_ns = spans["chat gpt-4o-mini"].end_time or 0
    assert chat.timestamp == at_microsecond(end_ns)
    assert chat.cost_usd == reference_cost(
        "openai", "gpt-4o-mini", TokenCounts(1500, 450, 1024), chat.timestamp
    )

    claude = rows[span_id(spans["chat claude"])]
    assert (claude.provider, claude.feature, claude.status_code) == ("anthropic", "escalation", 500)
    assert (claude.input_tokens, claude.cache_write_tokens, claude.output_tokens) == (
        3000,
        2000,
        200,
    )
    assert claude.cost_usd == reference_cost(
        "anthropic", "claude-sonnet-4-20250514", TokenCounts(3000, 200, 0, 2000), claude.timestamp
    )
    assert claude.cost_usd > 0 and claude.cost_source == "catalog"


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.celery_worker
def test_it_shows_an_instrumented_script_on_the_dashboard(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The "done when": spans from the SDK reach the usage API and the overview page
    # through the production server and a real Celery worker rolling them up.
    env = {"DATABASE_URL": server_database_url()}
    with (
        web_server(env, workers=1) as base,
        celery_worker(),
        otel_pointed_at(base, world.ingest.token, monkeypatch) as (provider, _, _),
    ):
        instrumented_calls(provider)
        assert provider.force_flush(timeout_millis=90_000)
        expected = sum((e.cost_usd for e in stored(world.tenant)), start=0)

        def rolled_up() -> list[dict]:
            today = datetime.now().astimezone().date()
            params = {
                "group_by": "feature",
                "from": (today - timedelta(days=1)).isoformat(),
                "to": (today + timedelta(days=2)).isoformat(),
            }
            headers = {"Authorization": f"Bearer {world.read.token}"}
            rows = httpx.get(f"{base}/api/v1/usage", params=params, headers=headers).json()["rows"]
            return rows if {r.get("feature") for r in rows} >= {"support-bot", "escalation"} else []

        rows = wait_until(rolled_up, timeout=60)
    assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(float(expected))
    page = login("owner").get("/")
    assert page.status_code == 200
    assert b"support-bot" in page.content


def test_it_answers_503_with_retry_after_when_the_database_is_unreachable() -> None:
    # Not tied to the test database: the server's database is a closed port.
    body = export_request([span(genai_attributes())]).SerializeToString()
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/costboard"}
    with web_server(env, workers=1) as base:
        response = httpx.post(
            f"{base}/v1/traces",
            content=body,
            headers={
                "Authorization": "Bearer cb_abc_def",
                "Content-Type": "application/x-protobuf",
            },
            timeout=30,
        )
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
