"""The OpenAPI description of `POST /v1/traces` and `POST /v1/metrics`, from the OTLP/HTTP
specification.

Bodies are protobuf (`ExportTraceServiceRequest`) or its JSON mapping, whose shape is given
here to the depth Costboard reads (spans and their attributes). Every answer is in the
request's encoding: an `ExportTraceServiceResponse`, or a `google.rpc.Status` for an error
(protobuf for a request whose Content-Type is neither).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from core.openapi import ERROR, RESPONSE_HEADERS

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ANY_VALUE: dict[str, Any] = {
    "type": "object",
    "description": "One of stringValue, intValue, doubleValue, boolValue, arrayValue, "
    "kvlistValue, bytesValue.",
    "properties": {
        "stringValue": {"type": "string"},
        "intValue": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "doubleValue": {"type": "number"},
        "boolValue": {"type": "boolean"},
        "arrayValue": {"type": "object"},
        "kvlistValue": {"type": "object"},
        "bytesValue": {"type": "string"},
    },
}
ATTRIBUTES: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"key": {"type": "string"}, "value": ANY_VALUE},
        "required": ["key"],
    },
}
UNIX_NANOS: dict[str, Any] = {"oneOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]}
SPAN: dict[str, Any] = {
    "type": "object",
    "properties": {
        "traceId": {"type": "string", "pattern": "^([0-9a-fA-F]{32})?$"},
        "spanId": {"type": "string", "pattern": "^([0-9a-fA-F]{16})?$"},
        "parentSpanId": {"type": "string", "pattern": "^([0-9a-fA-F]{16})?$"},
        "name": {"type": "string"},
        "kind": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        "startTimeUnixNano": UNIX_NANOS,
        "endTimeUnixNano": UNIX_NANOS,
        "attributes": ATTRIBUTES,
        "status": {
            "type": "object",
            "properties": {
                "code": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                "message": {"type": "string"},
            },
        },
    },
}
EXPORT_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "An OTLP/JSON ExportTraceServiceRequest (trace and span ids in hex).",
    "properties": {
        "resourceSpans": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "resource": {"type": "object", "properties": {"attributes": ATTRIBUTES}},
                    "scopeSpans": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "scope": {"type": "object"},
                                "spans": {"type": "array", "items": SPAN},
                            },
                        },
                    },
                },
            },
        }
    },
}
EXPORT_RESPONSE: dict[str, Any] = {
    "type": "object",
    "description": "ExportTraceServiceResponse; `partialSuccess` names the GenAI spans that "
    "were rejected, field and attribute.",
    "properties": {
        "partialSuccess": {
            "type": "object",
            "properties": {
                "rejectedSpans": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "errorMessage": {"type": "string"},
            },
        }
    },
}
STATUS: dict[str, Any] = {
    "type": "object",
    "description": "google.rpc.Status",
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}


def _in_both_encodings(status: int, json_body: dict[str, Any], description: str) -> dict:
    return {
        (status, PROTOBUF): OpenApiResponse(OpenApiTypes.BINARY, description),
        (status, JSON): OpenApiResponse(json_body, description),
    }


def _status(status: int, description: str) -> dict:
    return _in_both_encodings(status, STATUS, description)


TRACES_SCHEMA: dict[str, Any] = {
    "request": {PROTOBUF: OpenApiTypes.BINARY, JSON: EXPORT_REQUEST},
    "responses": {
        **_in_both_encodings(
            200, EXPORT_RESPONSE, "Accepted; the valid GenAI spans are stored, others ignored."
        ),
        **_status(400, "Not OTLP: not protobuf, not JSON, bad gzip, wrong shape, ids not hex."),
        **_status(401, "No API key, or an unknown or revoked one."),
        **_status(403, "An API key whose scope is not 'ingest'."),
        **_status(413, "Over 5 MiB on the wire, or over 20 MiB decompressed."),
        **_status(415, "A Content-Type or Content-Encoding other than these (gzip, deflate)."),
        **_status(429, "Past the key's rate limit: retry after `Retry-After` seconds."),
        (503, JSON): OpenApiResponse(ERROR, "Storage is down: retry after `Retry-After` seconds."),
    },
    "parameters": RESPONSE_HEADERS,
    "description": "OTLP/HTTP traces (protobuf or JSON, optionally gzip). Spans with GenAI "
    "token usage become usage events; other spans are ignored. Answers in the request's "
    "encoding.",
}

METRICS_RESPONSE: dict[str, Any] = {
    "type": "object",
    "description": "ExportMetricsServiceResponse, always empty: the metrics are not kept.",
    "properties": {"partialSuccess": {"type": "object"}},
}

METRICS_SCHEMA: dict[str, Any] = {
    "request": {
        PROTOBUF: OpenApiTypes.BINARY,
        JSON: {"type": "object", "description": "An OTLP/JSON ExportMetricsServiceRequest."},
    },
    "responses": {
        **_in_both_encodings(
            200, METRICS_RESPONSE, "Accepted and ignored: usage is counted from the spans."
        ),
        **_status(400, "Not OTLP: not protobuf, not JSON, bad gzip, wrong shape."),
        **_status(401, "No API key, or an unknown or revoked one."),
        **_status(403, "An API key whose scope is not 'ingest'."),
        **_status(413, "Over 5 MiB on the wire, or over 20 MiB decompressed."),
        **_status(415, "A Content-Type or Content-Encoding other than these (gzip, deflate)."),
        **_status(429, "Past the key's rate limit: retry after `Retry-After` seconds."),
        (503, JSON): OpenApiResponse(ERROR, "Storage is down: retry after `Retry-After` seconds."),
    },
    "parameters": RESPONSE_HEADERS,
    "description": "OTLP/HTTP metrics, accepted and ignored so that an SDK exporting metrics "
    "beside its traces logs no errors. GenAI instrumentations' `gen_ai.client.token.usage` "
    "histograms repeat what the spans sent to `/v1/traces` already carry: nothing here is "
    "counted, so no call is counted twice.",
}
