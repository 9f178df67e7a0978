"""Build OTLP trace requests with the official protobuf classes, as an exporter would."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.test import Client
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from ingest.models import UsageEvent
from tenants.models import Tenant
from tests.conftest import KeyHolder

URL = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in values.items()]


def genai_attributes(**overrides: Any) -> dict[str, Any]:
    """A chat call as the GenAI semantic conventions describe it."""
    values: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def span(
    attrs: dict[str, Any],
    *,
    span_id: bytes | None = None,
    trace_id: bytes | None = None,
    duration_ms: int = 850,
    end_ns: int | None = None,
    error: bool = False,
) -> Span:
    end = end_ns or time.time_ns() - 60 * 1_000_000_000
    result = Span(
        trace_id=trace_id or os.urandom(16),
        span_id=span_id or os.urandom(8),
        name=f"{attrs.get('gen_ai.operation.name', 'work')} {attrs.get('gen_ai.request.model', '')}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=end - duration_ms * 1_000_000,
        end_time_unix_nano=end,
        attributes=attributes(attrs),
    )
    if error:
        result.status.code = result.status.STATUS_CODE_ERROR
    return result


def export_request(
    spans: list[Span], resource: dict[str, Any] | None = None
) -> ExportTraceServiceRequest:
    resource_attrs = {"service.name": "smart-reply", **(resource or {})}
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=attributes(resource_attrs)),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )


def post_otlp(
    body: bytes | str,
    holder: KeyHolder | None,
    content_type: str = PROTOBUF,
    **headers: Any,
):
    extra: dict[str, Any] = {**(holder.auth if holder else {}), **headers}
    return Client().post(URL, body, content_type=content_type, **extra)


def post_request(request: ExportTraceServiceRequest, holder: KeyHolder | None, **headers: Any):
    return post_otlp(request.SerializeToString(), holder, **headers)


def export_response(response: Any) -> ExportTraceServiceResponse:
    message = ExportTraceServiceResponse()
    if response["Content-Type"].startswith(JSON):
        json_format.Parse(response.content, message)
    else:
        message.ParseFromString(response.content)
    return message


def status_of(response: Any) -> Status:
    """The google.rpc.Status an OTLP/HTTP error answer carries."""
    message = Status()
    if response["Content-Type"].startswith(JSON):
        json_format.Parse(response.content, message)
    else:
        message.ParseFromString(response.content)
    return message


def at_microsecond(unix_nano: int) -> datetime:
    """A span time as the database keeps it: UTC, to the microsecond (truncated)."""
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=nanos // 1000)


def stored(tenant: Tenant) -> list[UsageEvent]:
    return list(UsageEvent.objects.for_tenant(tenant).order_by("timestamp", "event_id"))
