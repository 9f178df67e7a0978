"""`POST /api/v1/events` and the `LLMCostTracker` compatibility endpoint, as Django views.

The production server serves these two URLs from `ingest.wsgi` before Django; these views are what the
test client, `runserver` and the OpenAPI schema see. Both call the same functions of
`ingest.endpoint`, so they answer alike.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from core.api import ApiView
from ingest.endpoint import Answer, BodyError, BodyReader, post_events, post_llm_costs
from ingest.openapi import EVENTS_SCHEMA, LLM_COSTS_SCHEMA
from tenants.auth import ApiKeyAuthentication, ApiKeyRateThrottle, HasIngestScope

__all__ = ["BodyError", "EventsView", "IngestView", "LlmCostsView"]


class IngestView(ApiView):
    """API key, ingest scope and rate limit through DRF (the OTLP receiver is one)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasIngestScope]
    throttle_classes = [ApiKeyRateThrottle]
    parser_classes: list[Any] = []


class EndpointView(IngestView):
    """Delegates the whole request to an `ingest.endpoint` function.

    The DRF classes stay declared for the schema (security, 401/403/429), but the endpoint
    function authenticates, checks the scope and counts the rate limit itself, exactly as it
    does for the WSGI fast path, so DRF must not do it a second time here.
    """

    def perform_authentication(self, request: Request) -> None:
        pass

    def check_permissions(self, request: Request) -> None:
        pass

    def check_throttles(self, request: Request) -> None:
        pass


def _respond(endpoint: Any, request: Request) -> HttpResponse:
    meta = request.META
    read: BodyReader = request._request.read
    result: Answer = endpoint(meta.get("HTTP_AUTHORIZATION", ""), _length(meta), read)
    response = HttpResponse(result.body, status=result.status, content_type="application/json")
    for name, value in result.headers:
        response[name] = value
    return response


def _length(meta: dict[str, Any]) -> int | None:
    try:
        return int(meta["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return None


class EventsView(EndpointView):
    @extend_schema(**EVENTS_SCHEMA)
    def post(self, request: Request) -> HttpResponse:
        return _respond(post_events, request)


class LlmCostsView(EndpointView):
    """What `LLMCostTracker._send_to_observability` posts; it expects a 200."""

    @extend_schema(**LLM_COSTS_SCHEMA)
    def post(self, request: Request) -> HttpResponse:
        return _respond(post_llm_costs, request)
