"""Turn an OTLP/HTTP request body into an export request (traces or metrics), and answers back.

OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/#otlphttp) sends either binary protobuf
(`application/x-protobuf`) or the protobuf JSON mapping (`application/json`), optionally
compressed (`Content-Encoding: gzip`). OTLP/JSON differs from protobuf's JSON mapping in one
way that matters here: trace and span ids are hex strings, not base64.
"""

from __future__ import annotations

import base64
import enum
import json
import zlib
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from rest_framework.request import Request

from ingest.views import BodyError

# A gzip body may inflate far beyond what was sent; spans with captured prompts compress
# well, so allow more once decompressed than on the wire, but never without a bound.
DECODED_LIMIT_FACTOR = 4


class Encoding(enum.Enum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


def encoding_of(request: Request) -> Encoding | None:
    media_type = request.META.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    for encoding in Encoding:
        if media_type == encoding.value:
            return encoding
    return None


def read_export_request(request: Request, encoding: Encoding) -> ExportTraceServiceRequest:
    """The parsed body; raises BodyError (400, 413 or 415) for anything else."""
    message = ExportTraceServiceRequest()
    _read_into(message, request, encoding)
    return message


def read_metrics_request(request: Request, encoding: Encoding) -> ExportMetricsServiceRequest:
    """As `read_export_request`, for `POST /v1/metrics`."""
    message = ExportMetricsServiceRequest()
    _read_into(message, request, encoding)
    return message


def _read_into(message: Message, request: Request, encoding: Encoding) -> None:
    raw = _decompress(_read_body(request), request.META.get("HTTP_CONTENT_ENCODING", ""))
    name = type(message).__name__
    if encoding is Encoding.JSON:
        _parse_json(raw, message)
        return
    try:
        message.ParseFromString(raw)
    except DecodeError as exc:
        raise BodyError(400, f"body is not an OTLP {name}: {exc}") from exc


def _read_body(request: Request) -> bytes:
    # The REST ingest endpoint's rule: refuse by Content-Length before reading anything.
    limit = settings.INGEST_MAX_BODY_BYTES
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    body = request.body
    if len(body) > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    return body


def _decompress(body: bytes, content_encoding: str) -> bytes:
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "deflate"):
        raise BodyError(415, f"Content-Encoding {coding!r} is not supported (use gzip)")
    limit = settings.INGEST_MAX_BODY_BYTES * DECODED_LIMIT_FACTOR
    # wbits 16+MAX_WBITS: gzip framing; MAX_WBITS: zlib framing, which HTTP calls deflate.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
        if len(data) > limit or inflater.unconsumed_tail:
            raise BodyError(413, f"body is larger than {limit} bytes once decompressed")
        data += inflater.flush()
    except zlib.error as exc:
        raise BodyError(400, f"body is not valid {coding}: {exc}") from exc
    if not inflater.eof:
        raise BodyError(400, f"body is not valid {coding}: truncated stream")
    return data


def _parse_json(raw: bytes, message: Message) -> None:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # arrays or objects nested a thousand deep, as the REST path
        raise BodyError(400, "body is not valid JSON: nested too deeply") from exc
    name = type(message).__name__
    if not isinstance(payload, dict):
        raise BodyError(400, f"body must be an OTLP/JSON {name} object")
    try:
        _hex_ids_to_base64(payload)
        # OTLP/JSON receivers must ignore fields they do not know (newer senders add some).
        json_format.ParseDict(payload, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise BodyError(400, f"body is not an OTLP/JSON {name}: {exc}") from exc


def _hex_ids_to_base64(payload: dict[str, Any]) -> None:
    """Rewrite OTLP/JSON's hex ids into the base64 that protobuf's JSON parser expects."""
    for resource_spans in _objects(payload.get("resourceSpans")):
        for scope_spans in _objects(resource_spans.get("scopeSpans")):
            for span in _objects(scope_spans.get("spans")):
                _convert_ids(span, ("traceId", "spanId", "parentSpanId"))
                for link in _objects(span.get("links")):
                    _convert_ids(link, ("traceId", "spanId"))


def _objects(value: Any) -> list[dict[str, Any]]:
    # A wrong shape is left alone here: json_format names it precisely afterwards.
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _convert_ids(obj: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        value = obj.get(name)
        if isinstance(value, str) and value:
            try:
                obj[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError as exc:
                raise ValueError(f"{name} must be a hex string, got {value!r}") from exc


def otlp_response(message: Message, encoding: Encoding, status: int = 200) -> HttpResponse:
    """A response body in the encoding of the request, as OTLP/HTTP requires."""
    if encoding is Encoding.JSON:
        body = json_format.MessageToJson(message, indent=None).encode()
    else:
        body = message.SerializeToString()
    return HttpResponse(body, status=status, content_type=encoding.value)


def error_response(status: int, detail: str, encoding: Encoding) -> HttpResponse:
    # OTLP/HTTP: every 4xx/5xx body is a google.rpc.Status describing the problem.
    return otlp_response(Status(code=_grpc_code(status), message=detail), encoding, status)


def _grpc_code(status: int) -> int:
    # google.rpc.Code values: the closest gRPC status for each HTTP status we answer.
    codes = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 503: 14}
    return codes.get(status, 2)
