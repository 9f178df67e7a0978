"""One instrumented LLM call, run in a process of its own: `python -m tests.otlp.instrumented LIB`.

Instrumentations patch SDK classes for the whole process, and LiteLLM keeps global callbacks,
so each library runs alone here, set up the way its documentation tells users to, and exports
its spans to the Costboard named by the environment (`OTEL_EXPORTER_OTLP_*`, or LiteLLM's own
`OTEL_*` variables). `PROVIDER_URL` is the fake provider (tests/otlp/provider.py) and
`PROVIDER_MODEL` the model asked for. Nothing here talks to the internet.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


@contextmanager
def exported() -> Iterator[TracerProvider]:
    """The README's set-up: OTLP/HTTP exporters configured by the environment alone. Metrics
    are exported too, as a default SDK set-up does: instrumentations record token-usage
    histograms, which go to Costboard's `/v1/metrics`."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    meters = MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
    metrics.set_meter_provider(meters)
    yield provider
    provider.shutdown()  # exports what is left
    meters.shutdown()


def openai_client():  # type: ignore[no-untyped-def]
    import openai

    return openai.OpenAI(base_url=f"{os.environ['PROVIDER_URL']}/v1", api_key="sk-test")


def openai_v2() -> None:
    """The official `opentelemetry-instrumentation-openai-v2`; semantic-convention mode from
    OTEL_SEMCONV_STABILITY_OPT_IN."""
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    with exported() as provider:
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        model = os.environ["PROVIDER_MODEL"]
        openai_client().chat.completions.create(model=model, messages=MESSAGES)


def openllmetry_openai() -> None:
    """OpenLLMetry's `opentelemetry-instrumentation-openai` (traceloop-sdk's): a plain call
    and a streamed one."""
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    with exported() as provider:
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        client, model = openai_client(), os.environ["PROVIDER_MODEL"]
        client.chat.completions.create(model=model, messages=MESSAGES)
        stream = client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        for _chunk in stream:
            pass


def openllmetry_anthropic() -> None:
    """The `anthropic` SDK through OpenLLMetry's `opentelemetry-instrumentation-anthropic`."""
    import anthropic
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    with exported() as provider:
        AnthropicInstrumentor().instrument(tracer_provider=provider)
        client = anthropic.Anthropic(base_url=os.environ["PROVIDER_URL"], api_key="sk-ant-test")
        model = os.environ["PROVIDER_MODEL"]
        client.messages.create(model=model, max_tokens=100, messages=MESSAGES)


def litellm_otel() -> None:
    """LiteLLM's `otel` callback, configured by LiteLLM's own OTEL_* variables; the call is
    answered by `mock_response` (no provider), with the usage the provider would report."""
    import litellm
    from litellm.litellm_core_utils.thread_pool_executor import executor

    litellm.callbacks = ["otel"]
    model = os.environ["PROVIDER_MODEL"]
    response = litellm.ModelResponse(
        model=model,
        choices=[{"message": {"role": "assistant", "content": "Hello!"}}],
        usage=litellm.Usage(**json.loads(os.environ["PROVIDER_USAGE"])),
    )
    litellm.completion(model=model, messages=MESSAGES, mock_response=response)
    executor.shutdown(wait=True)  # LiteLLM runs its callbacks in this pool, after the call
    # LiteLLM made the tracer provider and set it globally; shutting it down exports the spans.
    trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]


LIBRARIES: dict[str, Callable[[], None]] = {
    "openai-v2": openai_v2,
    "openllmetry-openai": openllmetry_openai,
    "openllmetry-anthropic": openllmetry_anthropic,
    "litellm": litellm_otel,
}

if __name__ == "__main__":
    LIBRARIES[sys.argv[1]]()
