"""`POST /v1/traces`: an OTLP/HTTP trace receiver that keeps the GenAI spans as usage events;
`POST /v1/metrics`: accepted and ignored.

Authentication, scope, rate limit and body size are the REST ingest endpoint's (both are
`IngestView`s); storage is `ingest_events`, so an event stored here is priced, deduplicated and
rolled up exactly like one sent to `POST /api/v1/events`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from rest_framework.request import Request
from rest_framework.response import Response

from ingest.services import IngestResult, ingest_events
from ingest.views import BodyError, IngestView
from otlp.decoding import (
    Encoding,
    encoding_of,
    error_response,
    otlp_response,
    read_export_request,
    read_metrics_request,
)
from otlp.mapping import SOURCE_OF, SpanEvent, genai_span_events
from otlp.openapi import METRICS_SCHEMA, TRACES_SCHEMA
from tenants.models import ApiKey

MAX_REASONS = 5  # how many rejected spans the error message names
# Headers DRF sets on its error answers that an OTLP exporter acts upon.
KEPT_HEADERS = ("Retry-After", "WWW-Authenticate")


class OtlpView(IngestView):
    """An OTLP/HTTP endpoint: every answer, errors included, in the request's encoding."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # 401/403/429 come from DRF as JSON; an OTLP client expects a Status in its encoding.
        if isinstance(response, Response) and response.status_code >= 400:
            response = _as_otlp_error(request, response)
        return super().finalize_response(request, response, *args, **kwargs)


class TracesView(OtlpView):
    @extend_schema(**TRACES_SCHEMA)
    def post(self, request: Request) -> Any:
        encoding = encoding_of(request)
        if encoding is None:
            detail = "Content-Type must be application/x-protobuf or application/json"
            return error_response(415, detail, Encoding.PROTOBUF)
        try:
            export = read_export_request(request, encoding)
        except BodyError as err:
            return error_response(err.status, err.detail, encoding)
        spans = genai_span_events(export)
        if not spans:
            return otlp_response(ExportTraceServiceResponse(), encoding)
        key = request.auth
        assert isinstance(key, ApiKey)  # HasIngestScope let only an ingest key through
        result = ingest_events(key, [span.event for span in spans])
        return otlp_response(_export_response(result, spans), encoding)


class MetricsView(OtlpView):
    """Accepts OTLP metrics and keeps none of them.

    GenAI instrumentations also record `gen_ai.client.token.usage` histograms, and an SDK set
    up from the environment exports metrics to the same base URL as traces. The spans already
    carry every call's usage: counting the histograms too would count each call twice, and
    answering 404 would make the exporter log an error on every export, forever. So a valid
    request gets the empty success answer OTLP defines, after the same key, scope, rate limit
    and body checks as `/v1/traces` (a wrong key still hears so).
    """

    @extend_schema(**METRICS_SCHEMA)
    def post(self, request: Request) -> Any:
        encoding = encoding_of(request)
        if encoding is None:
            detail = "Content-Type must be application/x-protobuf or application/json"
            return error_response(415, detail, Encoding.PROTOBUF)
        try:
            read_metrics_request(request, encoding)
        except BodyError as err:
            return error_response(err.status, err.detail, encoding)
        return otlp_response(ExportMetricsServiceResponse(), encoding)


def _as_otlp_error(request: Request, response: Response) -> Any:
    data = response.data
    detail = str(data.get("detail", data)) if isinstance(data, dict) else str(data)
    converted = error_response(
        response.status_code, detail, encoding_of(request) or Encoding.PROTOBUF
    )
    for name in KEPT_HEADERS:
        if name in response:
            converted[name] = response[name]
    return converted


def _export_response(result: IngestResult, spans: list[SpanEvent]) -> ExportTraceServiceResponse:
    """Success; `partial_success` names the GenAI spans that were rejected and why."""
    if not result.rejected:
        return ExportTraceServiceResponse()
    reasons = [_reason(spans[r["index"]].span_id, r["errors"]) for r in result.rejected]
    message = f"{len(reasons)} of {len(spans)} GenAI spans rejected: " + "; ".join(
        reasons[:MAX_REASONS]
    )
    if len(reasons) > MAX_REASONS:
        message += f"; and {len(reasons) - MAX_REASONS} more"
    partial = ExportTracePartialSuccess(rejected_spans=len(reasons), error_message=message)
    return ExportTraceServiceResponse(partial_success=partial)


def _reason(span_id: str, errors: dict[str, list[str]]) -> str:
    fields = ", ".join(f"{_label(name)} {' '.join(msgs)}" for name, msgs in errors.items())
    return f"span {span_id or '(no span id)'}: {fields}"


def _label(field: str) -> str:
    # The sender set attributes, not event fields: name the attribute the field came from.
    return f"{field} ({SOURCE_OF[field]})" if field in SOURCE_OF else field
