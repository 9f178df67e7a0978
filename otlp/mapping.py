"""Map spans that follow the OpenTelemetry GenAI semantic conventions onto usage events.

The events are plain dicts in the shape `POST /api/v1/events` takes, so the REST endpoint's
validation, pricing and storage (`ingest.services.ingest_events`) apply unchanged. The mapping
is documented in README.md ("Send usage: OpenTelemetry"); keep the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

# Current names first, then the older ones that instrumentations still send.
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system")
MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model")
INPUT_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ_KEYS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    # The anthropic SDK's own spans (its built-in tracing) spell it this way.
    "gen_ai.usage.cache_write.input_tokens",
)
ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")
USER_KEYS = ("enduser.id", "user.id")
AGGREGATE_OPERATIONS = {"invoke_agent", "invoke_workflow"}
# Where each event field comes from, to name it in a rejection the sender can act upon.
SOURCE_OF = {
    "provider": "gen_ai.provider.name",
    "model": "gen_ai.response.model",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
    "cache_write_tokens": "gen_ai.usage.cache_creation.input_tokens",
    "environment": "deployment.environment.name",
    "feature": "costboard.feature",
    "team": "costboard.team",
    "user_id": "enduser.id",
    "endpoint": "costboard.endpoint",
    "event_id": "span id",
    "timestamp": "end time",
}

# Semantic-convention provider names -> the names Costboard events use (README, SPEC.md).
PROVIDERS = {
    "aws.bedrock": "bedrock",
    "az.ai.openai": "azure",
    "azure.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure.ai.inference": "azure",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "mistral_ai": "mistral",
    "x_ai": "xai",
}


@dataclass(frozen=True)
class SpanEvent:
    span_id: str
    event: dict[str, Any]


class Attributes:
    """A span's attributes, falling back to its resource's for the keys that allow it."""

    def __init__(self, span: Mapping[str, Any], resource: Mapping[str, Any]) -> None:
        self.span, self.resource = span, resource

    def span_first(self, *keys: str) -> Any:
        return _first(self.span, keys) if _has_any(self.span, keys) else _first(self.resource, keys)

    def on_span(self, *keys: str) -> Any:
        return _first(self.span, keys)


def genai_span_events(request: ExportTraceServiceRequest) -> list[SpanEvent]:
    """One event per span that reports GenAI token usage; every other span is skipped."""
    found: list[SpanEvent] = []
    calls: set[tuple[Any, ...]] = set()
    for resource_attrs, span in _spans(request):
        attrs = Attributes(_attributes(span.attributes), resource_attrs)
        if not _is_model_usage(span, attrs):
            continue
        event = span_to_event(span, attrs)
        call = _call_key(event, attrs)
        if call in calls:
            continue  # a second instrumentation's span of a call already counted
        if call is not None:
            calls.add(call)
        found.append(SpanEvent(span.span_id.hex(), event))
    return found


def _call_key(event: dict[str, Any], attrs: Attributes) -> tuple[Any, ...] | None:
    """What identifies one provider call: its provider, the response id it answered with,
    and its token counts; None for a span without a response id.

    Two instrumentations can trace one call: the anthropic SDK traces its own calls, and
    OpenLLMetry's instrumentation of it makes a span of its own (in another trace). Counting
    both would double the spend, so the second is dropped. Only spans of one export request
    are compared: a batch exporter sends spans that end together in one request.
    """
    response_id = attrs.on_span("gen_ai.response.id")
    if not response_id:
        return None
    counts = (event.get("input_tokens"), event.get("output_tokens"))
    return (event.get("provider"), str(response_id), *counts)


def _is_model_usage(span: Span, attrs: Attributes) -> bool:
    if not _has_any(attrs.span, INPUT_KEYS + OUTPUT_KEYS):
        return False
    # An in-process agent or workflow reports the total of the model calls it made, and those
    # calls have spans of their own: counting both would double the spend. A remote agent
    # (a CLIENT span) made its calls elsewhere, so its own usage is all there is.
    operation = attrs.on_span("gen_ai.operation.name")
    return operation not in AGGREGATE_OPERATIONS or span.kind == Span.SPAN_KIND_CLIENT


def _spans(request: ExportTraceServiceRequest) -> Iterator[tuple[dict[str, Any], Span]]:
    for resource_spans in request.resource_spans:
        resource_attrs = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield resource_attrs, span


def span_to_event(span: Span, attrs: Attributes) -> dict[str, Any]:
    event: dict[str, Any] = {
        # Exporters resend the same span on a retry: its id makes the resend a duplicate.
        "event_id": span.span_id.hex(),
        "timestamp": _timestamp(span.end_time_unix_nano or span.start_time_unix_nano),
        "provider": _provider(attrs.on_span(*PROVIDER_KEYS)),
        "model": _text(attrs.on_span(*MODEL_KEYS)),
        "latency_ms": _latency_ms(span),
        "status_code": _status_code(span, attrs),
        "environment": _text(attrs.span_first(*ENVIRONMENT_KEYS)),
        "feature": _feature(attrs),
        "team": _text(attrs.span_first("costboard.team")),
        "user_id": _text(attrs.span_first(*USER_KEYS)),
        "endpoint": _text(attrs.span_first("costboard.endpoint")),
        "tags": _tags(span, attrs),
        **_token_counts(attrs),
    }
    # Absent means "use the default" to the validator, exactly as in a REST body.
    return {name: value for name, value in event.items() if value is not None}


def _token_counts(attrs: Attributes) -> dict[str, Any]:
    counts = {
        # An embeddings span has no output tokens; a span with only one count still counts.
        "input_tokens": _count(attrs.on_span(*INPUT_KEYS)) or 0,
        "output_tokens": _count(attrs.on_span(*OUTPUT_KEYS)) or 0,
        "cache_read_tokens": _count(attrs.on_span(*CACHE_READ_KEYS)) or 0,
        "cache_write_tokens": _count(attrs.on_span(*CACHE_WRITE_KEYS)) or 0,
    }
    if all(isinstance(v, int) and v >= 0 for v in counts.values()):
        cached = counts["cache_read_tokens"] + counts["cache_write_tokens"]
        # The conventions count cached tokens inside input_tokens, as Costboard does. More
        # cached than input can only mean the instrumentation passed on Anthropic's raw
        # `input_tokens`, which excludes the cache: add the cache back so nothing is lost.
        if cached > counts["input_tokens"]:
            counts["input_tokens"] += cached
    return counts


def _count(value: Any) -> Any:
    """An integer token count where the value is one; anything else is left for validation."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _provider(value: Any) -> str | None:
    name = _text(value)
    if name is None:
        return None
    name = name.strip().lower()
    return PROVIDERS.get(name, name)


def _feature(attrs: Attributes) -> str | None:
    explicit = _text(attrs.span_first("costboard.feature"))
    if explicit:
        return explicit
    service = _text(attrs.resource.get("service.name"))
    # The SDK's fallback ("unknown_service:python") names no feature anyone chose.
    if service and not service.startswith("unknown_service"):
        return service
    return None


def _status_code(span: Span, attrs: Attributes) -> int:
    http_status = attrs.on_span("http.response.status_code")
    if isinstance(http_status, int) and not isinstance(http_status, bool):
        return http_status
    error_type = attrs.on_span("error.type")
    if span.status.code == Status.STATUS_CODE_ERROR or error_type:
        # error.type may be the provider's HTTP status ("429") or an exception name.
        text = str(error_type or "")
        return int(text) if text.isdigit() and len(text) == 3 else 500
    return 200


def _timestamp(unix_nano: int) -> str | None:
    if not unix_nano:
        return None  # no time on the span: the server's receive time
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=nanos // 1000)
    return moment.isoformat()


def _latency_ms(span: Span) -> float | None:
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not start or end < start:
        return None
    return (end - start) / 1_000_000


def _tags(span: Span, attrs: Attributes) -> dict[str, str]:
    tags = {}
    operation = _text(attrs.on_span("gen_ai.operation.name"))
    if operation:
        tags["operation"] = operation
    if span.trace_id:
        tags["trace_id"] = span.trace_id.hex()  # to find the call in a tracing backend
    return tags


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _has_any(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    return any(key in attrs for key in keys)


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in attrs:
            return attrs[key]
    return None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, kind)
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None  # kvlist values and empty values carry nothing we map
