"""The OpenAPI description of the ingest endpoints, written by hand from the README's event
format: the validator (`ingest.validation`, `ingest.typed`) is plain Python, not serializers.

What a schema can say is said here (types, lengths, what is required); the rules it cannot
(a team that exists, a timestamp inside the retention window and not ahead of the clock,
cached tokens within input tokens) reject that one event with its field named.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse

from core.openapi import ERROR, RESPONSE_HEADERS, access_errors, error


def _text(max_length: int, description: str, required: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if required:  # not empty, not only spaces
        schema |= {"minLength": 1, "pattern": r"\S"}
    return schema | {"description": description}


def _count(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "description": description}


USAGE_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One LLM call. Unknown fields are ignored.",
    "properties": {
        "event_id": _text(
            128, "Idempotency key, unique per tenant: a repeat is a duplicate.", required=True
        ),
        "timestamp": {
            "description": "RFC 3339 with an offset, or epoch seconds; default: time received. "
            "Refused more than 5 minutes ahead or older than the raw-event retention.",
            "oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
        },
        "provider": _text(64, "openai, anthropic, google, azure, bedrock, ...", required=True),
        "model": _text(128, "The model as the provider names it.", required=True),
        "input_tokens": _count("Every input token, cached ones included."),
        "output_tokens": _count("Output tokens."),
        "cache_read_tokens": _count("The part of input_tokens read from the cache; default 0."),
        "cache_write_tokens": _count("The part of input_tokens written to the cache; default 0."),
        "feature": _text(128, "The product feature that made the call."),
        "endpoint": _text(128, "The service endpoint that made the call."),
        "user_id": _text(128, "The end user."),
        "team": _text(64, "A team slug; default: the key's team. An unknown team is refused."),
        "environment": _text(64, "Default production."),
        "latency_ms": {"type": "number", "minimum": 0},
        "status_code": {"type": "integer", "minimum": 0, "maximum": 999, "default": 200},
        "cost_usd": {
            "description": "What the client computed, used when Costboard has no price.",
            "oneOf": [
                {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
                {"type": "number", "minimum": 0},
            ],
        },
        "tags": {
            "type": "object",
            "maxProperties": 20,
            "additionalProperties": {"type": "string", "maxLength": 256},
        },
    },
    "required": ["provider", "model", "input_tokens", "output_tokens"],
}
EVENT_BATCH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "events": {"type": "array", "items": USAGE_EVENT, "minItems": 1, "maxItems": 1000}
    },
    "required": ["events"],
}
INGEST_RESULT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "duplicates": {"type": "integer", "minimum": 0},
        "rejected": {
            "type": "array",
            "description": "Each rejected event: its index in the batch and each field's errors.",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "errors": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "required": ["index", "errors"],
            },
        },
    },
    "required": ["accepted", "duplicates", "rejected"],
}
# seeds/001's LLMCostTracker payload, as `ingest.compat` maps it.
LLM_COSTS_PAYLOAD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "trace_id": _text(128, "The event id.", required=True),
        "timestamp": {"type": "number", "description": "Epoch seconds."},
        "provider": _text(64, "openai, anthropic, ...", required=True),
        "model": _text(128, "The model as the provider names it.", required=True),
        "feature": {"type": "string", "maxLength": 128},
        "user_id": {"type": "string", "maxLength": 128},
        "tokens": {
            "type": "object",
            "properties": {
                "input": {"type": "integer", "minimum": 0},
                "output": {"type": "integer", "minimum": 0},
                "cache_hit": {"type": "boolean"},
                "cache_tokens": {"type": "integer", "minimum": 0},
            },
            "required": ["input", "output"],
        },
        "costs": {
            "type": "object",
            "properties": {"total_usd": {"type": "number", "minimum": 0}},
        },
        "metadata": {
            "type": "object",
            "properties": {"environment": {"type": "string"}, "version": {"type": "string"}},
        },
    },
    "required": ["provider", "model", "tokens"],
}
BAD_REQUEST = error(
    "Nothing valid: every event was rejected (with its errors), or the body is not JSON or "
    "not an event.",
    {"anyOf": [INGEST_RESULT, ERROR]},
)
TOO_LARGE = error("The body is over 5 MiB, or a batch has more than 1,000 events.")


def _answers(success: int, description: str) -> dict[int, OpenApiResponse]:
    return {
        success: OpenApiResponse(response=INGEST_RESULT, description=description),
        400: BAD_REQUEST,
        413: TOO_LARGE,
        **access_errors("ingest"),
    }


EVENTS_SCHEMA: dict[str, Any] = {
    "request": {"application/json": {"anyOf": [USAGE_EVENT, EVENT_BATCH]}},
    "responses": _answers(
        202, "Stored: every accepted event is durable. Rejected events come back with errors."
    ),
    "parameters": RESPONSE_HEADERS,
    "description": 'One usage event, or {"events": [...]} with at most 1,000 events. The '
    "valid events of a batch are stored even when others are rejected.",
}
LLM_COSTS_SCHEMA: dict[str, Any] = {
    "request": {"application/json": LLM_COSTS_PAYLOAD},
    "responses": _answers(200, "Stored (or a duplicate of an event already stored)."),
    "parameters": RESPONSE_HEADERS,
    "description": "What the `LLMCostTracker` example posts, unchanged; it expects a 200.",
}
