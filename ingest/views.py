"""`POST /api/v1/events` and the `LLMCostTracker` compatibility endpoint."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest.compat import tracker_payload_to_event
from ingest.services import ingest_events
from tenants.auth import ApiKeyAuthentication, ApiKeyRateThrottle, HasIngestScope
from tenants.models import ApiKey


class BodyError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


def read_json(request: Request) -> Any:
    """The request body as JSON, with numbers kept exact (Decimal, never float)."""
    limit = settings.INGEST_MAX_BODY_BYTES
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    body = request.body
    if len(body) > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, f"body is not valid JSON: {exc}") from exc


def _no_constants(name: str) -> None:
    # Python's json accepts NaN and Infinity; JSON does not, and neither does a cost.
    raise ValueError(f"{name} is not valid JSON")


def events_of(payload: Any) -> list[Any]:
    if isinstance(payload, dict) and "events" in payload:
        events = payload["events"]
        if not isinstance(events, list):
            raise BodyError(400, "events must be a list of event objects")
        if len(events) > settings.INGEST_MAX_EVENTS:
            raise BodyError(413, f"at most {settings.INGEST_MAX_EVENTS} events per request")
        return events
    if isinstance(payload, dict):
        return [payload]
    raise BodyError(400, 'body must be an event object or {"events": [...]}')


def _ingest_key(request: Request) -> ApiKey:
    key = request.auth
    assert isinstance(key, ApiKey)  # HasIngestScope let only an ingest key through
    return key


class IngestView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasIngestScope]
    throttle_classes = [ApiKeyRateThrottle]
    parser_classes: list[Any] = []


class EventsView(IngestView):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={202: OpenApiTypes.OBJECT, 400: OpenApiResponse(description="nothing valid")},
        description='One usage event, or {"events": [...]} with at most 1,000 events.',
    )
    def post(self, request: Request) -> Response:
        try:
            events = events_of(read_json(request))
        except BodyError as err:
            return Response({"detail": err.detail}, status=err.status)
        if not events:
            return Response({"detail": "no events in the body"}, status=400)
        result = ingest_events(_ingest_key(request), events)
        status = 202 if result.accepted or result.duplicates else 400
        return Response(result.as_dict(), status=status)


class LlmCostsView(IngestView):
    """What `LLMCostTracker._send_to_observability` posts; it expects a 200."""

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        try:
            payload = read_json(request)
        except BodyError as err:
            return Response({"detail": err.detail}, status=err.status)
        event = tracker_payload_to_event(payload)
        result = ingest_events(_ingest_key(request), [event])
        status = 400 if result.rejected else 200
        return Response(result.as_dict(), status=status)
