"""Contract tests: the instrumentation libraries users run, unmodified, against a live Costboard.

Each library drives the real SDK (`openai`, `anthropic`) or LiteLLM against a fake provider on
127.0.0.1 (tests/otlp/provider.py), in a process of its own (tests/otlp/instrumented.py: the
instrumentations patch SDK classes globally), and exports its spans, and its metrics, to the
production server. The stored events must carry the provider, model and every kind of token
the library sent, priced exactly as `genai_prices.calc_price` prices that usage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

from ingest.models import UsageEvent
from pricing.catalog import TokenCounts, reference_cost
from tests import worker
from tests.conftest import World
from tests.otlp.helpers import stored
from tests.otlp.provider import Provider, Usage, fake_provider, openai_usage
from tests.server import ROOT, web_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

GPT = "gpt-4o-mini-2024-07-18"
CLAUDE = "claude-sonnet-4-20250514"


@pytest.fixture(scope="module")
def server_url(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    """One production server for the module, on the test database (tables are emptied
    between tests; every test makes keys of its own)."""
    with django_db_blocker.unblock():
        database_url = worker.test_database_url()
    with web_server({"DATABASE_URL": database_url}, workers=1) as base:
        yield base


def run_library(library: str, provider: Provider, env: dict[str, str]) -> str:
    """Run one library's calls (tests/otlp/instrumented.py); its standard error, for the
    exporters' complaints."""
    full_env = {
        **os.environ,
        "PROVIDER_URL": provider.url,
        "PROVIDER_MODEL": provider.model,
        "PROVIDER_USAGE": json.dumps(openai_usage(provider.usage)),
        # A cold server's first request loads the price catalog: slow on a busy machine.
        "OTEL_EXPORTER_OTLP_TIMEOUT": "60",
        "OTEL_SERVICE_NAME": "support-bot",
        **env,
    }
    cmd = [sys.executable, "-m", "tests.otlp.instrumented", library]
    done = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stderr


def otlp_env(base: str, token: str, **extra: str) -> dict[str, str]:
    """The README's environment for an OpenTelemetry SDK (traces and metrics)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": base,
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{token}",
        **extra,
    }


def only_event(world: World) -> UsageEvent:
    """The one event the call stored, in the key's tenant; the other tenant has none."""
    assert stored(world.other_tenant) == []
    (event,) = stored(world.tenant)
    return event


def assert_priced(event: UsageEvent, provider: str, model: str, tokens: TokenCounts) -> None:
    """Provider, model, tokens by kind, and the catalog's exact price for that usage."""
    assert (event.provider, event.model) == (provider, model)
    stored_tokens = (
        event.input_tokens,
        event.output_tokens,
        event.cache_read_tokens,
        event.cache_write_tokens,
    )
    assert stored_tokens == tokens
    assert event.cost_source == "catalog"
    assert isinstance(event.cost_usd, Decimal) and event.cost_usd > 0
    assert event.cost_usd == reference_cost(provider, model, tokens, event.timestamp)


def assert_exported_cleanly(stderr: str) -> None:
    # The SDK's exporters log a failed export (a 404 on /v1/metrics, say) on standard error.
    assert "Failed to export" not in stderr, stderr
    assert "error" not in stderr.lower(), stderr


@pytest.mark.parametrize("mode", ["default", "gen_ai_latest_experimental"])
def test_it_prices_openai_chat_traced_by_the_official_openai_v2_instrumentation(
    world: World, server_url: str, mode: str
) -> None:
    extra = {"OTEL_SEMCONV_STABILITY_OPT_IN": mode} if mode != "default" else {}
    usage = Usage(input=1500, output=450, cache_read=1024)
    with fake_provider(GPT, usage) as provider:
        stderr = run_library(
            "openai-v2", provider, otlp_env(server_url, world.ingest.token, **extra)
        )
    assert provider.requests == 1
    assert_exported_cleanly(stderr)
    event = only_event(world)
    # openai-v2 sends no cache attribute for chat completions: the 1024 cached tokens are
    # priced as plain input (README: "Works with").
    assert_priced(event, "openai", GPT, TokenCounts(1500, 450, 0, 0))
    assert event.feature == "support-bot"


def test_it_prices_plain_and_streamed_calls_traced_by_openllmetry_with_cache_reads(
    world: World, server_url: str
) -> None:
    usage = Usage(input=3000, output=120, cache_read=2048)
    with fake_provider(GPT, usage) as provider:
        stderr = run_library(
            "openllmetry-openai", provider, otlp_env(server_url, world.ingest.token)
        )
    assert provider.requests == 2
    assert_exported_cleanly(stderr)
    assert stored(world.other_tenant) == []
    events = stored(world.tenant)
    assert len(events) == 2  # the plain call and the streamed one
    for event in events:
        assert_priced(event, "openai", GPT, TokenCounts(3000, 120, 2048, 0))


def test_it_prices_the_anthropic_sdk_traced_by_openllmetry_once_with_its_cache(
    world: World, server_url: str
) -> None:
    # The anthropic SDK traces its own calls too (on by default): two spans for one call,
    # which must be counted once, with the cache writes the SDK's span names its own way.
    usage = Usage(input=2500, output=300, cache_read=1024, cache_write=700)
    with fake_provider(CLAUDE, usage) as provider:
        stderr = run_library(
            "openllmetry-anthropic", provider, otlp_env(server_url, world.ingest.token)
        )
    assert provider.requests == 1
    assert_exported_cleanly(stderr)
    event = only_event(world)
    assert_priced(event, "anthropic", CLAUDE, TokenCounts(2500, 300, 1024, 700))


def test_it_prices_litellm_otel_callback_calls(world: World, server_url: str) -> None:
    usage = Usage(input=1200, output=80, cache_read=512)
    env = {
        # LiteLLM's own variables (README: "Works with"), and offline: no cost map download.
        "OTEL_EXPORTER": "otlp_http",
        "OTEL_ENDPOINT": f"{server_url}/v1/traces",
        "OTEL_HEADERS": f"Authorization=Bearer {world.ingest.token}",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    with fake_provider(GPT, usage) as provider:
        run_library("litellm", provider, env)
    assert provider.requests == 0  # mock_response: LiteLLM calls no provider
    event = only_event(world)
    # LiteLLM's callback sends no cache attribute: the 512 cached tokens are plain input.
    assert_priced(event, "openai", GPT, TokenCounts(1200, 80, 0, 0))


def test_it_accepts_the_sdk_metrics_exporter_and_counts_nothing(
    world: World, server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("opentelemetry.instrumentation.openai")
    meter.create_histogram("gen_ai.client.token.usage").record(1500, {"gen_ai.token.type": "input"})
    data = reader.get_metrics_data()
    assert data is not None
    exporter = OTLPMetricExporter(
        endpoint=f"{server_url}/v1/metrics",
        headers={"Authorization": f"Bearer {world.ingest.token}"},
        timeout=60,
    )
    assert exporter.export(data) is MetricExportResult.SUCCESS
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []
    assert stored(world.tenant) == [] and stored(world.other_tenant) == []
