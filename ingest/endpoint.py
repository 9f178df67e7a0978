"""`POST /api/v1/events` and `POST /api/v1/metrics/llm-costs`: the whole request handling.

One function per endpoint takes what it needs of the request (the Authorization header, the
declared length and a body reader) and returns the answer (status, JSON body, headers). Both
the WSGI fast path (`ingest.wsgi`, what the production server serves) and the Django views (`ingest.views`,
what the test client and the schema see) call these, so the two cannot answer differently.

The order of checks is DRF's, which these endpoints used before: authentication (401),
scope (403), rate limit (429), then the body (413, 400), then storage (202/200, or 503).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer

from core.storage import RETRY_AFTER_SECONDS, STORAGE_UNAVAILABLE, is_storage_outage
from ingest.compat import tracker_payload_to_event
from ingest.services import IngestResult, ingest_events
from ingest.typed import JsonPathNeeded, decode_events
from tenants.auth import (
    AUTHENTICATE_HEADER,
    UNKNOWN_KEY,
    bearer_token,
    live_api_key,
    rate_limit_wait,
)
from tenants.models import ApiKey, Scope

log = logging.getLogger(__name__)
# Reads at most n bytes of the request body.
BodyReader = Callable[[int], bytes]
WRONG_SCOPE = f"this endpoint needs an API key with scope {Scope.INGEST.value!r}"
_renderer = JSONRenderer()  # DRF's own rendering, so bodies stay byte for byte what they were


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class BodyError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


def answer(status: int, data: Any, *headers: tuple[str, str]) -> Answer:
    return Answer(status, _renderer.render(data), headers)


def post_events(authorization: str, content_length: int | None, read: BodyReader) -> Answer:
    """One event, or {"events": [...]}: 202 when anything was stored or already known."""

    def handle(key: ApiKey) -> Answer:
        body = read_body(content_length, read)
        # The typed decoder takes what it fully accepts; the JSON path answers everything else.
        events = decode_events(body)
        if events is not None:
            try:
                return _ingest_batch(key, events)
            except JsonPathNeeded:
                pass  # nothing was stored
        return _ingest_batch(key, events_of(parse_json(body)))

    return _serve(authorization, handle)


def _ingest_batch(key: ApiKey, events: list[Any]) -> Answer:
    if not events:
        return answer(400, {"detail": "no events in the body"})
    result = ingest_events(key, events)
    return _result(202 if result.accepted or result.duplicates else 400, result)


def post_llm_costs(authorization: str, content_length: int | None, read: BodyReader) -> Answer:
    """What `LLMCostTracker._send_to_observability` posts; it expects a 200."""

    def handle(key: ApiKey) -> Answer:
        event = tracker_payload_to_event(read_json(content_length, read))
        result = ingest_events(key, [event])
        return _result(400 if result.rejected else 200, result)

    return _serve(authorization, handle)


def _result(status: int, result: IngestResult) -> Answer:
    return answer(status, result.as_dict())


def _serve(authorization: str, handle: Callable[[ApiKey], Answer]) -> Answer:
    try:
        key = _ingest_key(authorization)
        if isinstance(key, Answer):
            return key
        return handle(key)
    except BodyError as err:
        return answer(err.status, {"detail": err.detail})
    except Exception as exc:
        if not is_storage_outage(exc):
            raise
        # Nothing was accepted, so a client's retry cannot double count.
        log.warning("database unavailable: %s", exc)
        return answer(503, STORAGE_UNAVAILABLE, ("Retry-After", str(RETRY_AFTER_SECONDS)))


def _ingest_key(authorization: str) -> ApiKey | Answer:
    """The request's live ingest key within its rate limit, or the answer refusing it."""
    token = bearer_token(authorization)
    if token is None:
        return _unauthenticated(str(exceptions.NotAuthenticated().detail))
    key = live_api_key(token)
    if key is None:
        return _unauthenticated(UNKNOWN_KEY)
    if key.scope != Scope.INGEST:
        return answer(403, {"detail": WRONG_SCOPE})
    wait = rate_limit_wait(key)
    if wait is not None:
        seconds = math.ceil(wait)  # DRF's rounding, for the message and the header alike
        detail = exceptions.Throttled(seconds).detail
        return answer(429, {"detail": detail}, ("Retry-After", str(seconds)))
    return key


def _unauthenticated(detail: str) -> Answer:
    return answer(401, {"detail": detail}, ("WWW-Authenticate", AUTHENTICATE_HEADER))


def read_json(content_length: int | None, read: BodyReader) -> Any:
    """The request body as JSON, with numbers kept exact (Decimal, never float)."""
    return parse_json(read_body(content_length, read))


def read_body(content_length: int | None, read: BodyReader) -> bytes:
    """The request body, or 413 past the size limit."""
    limit = settings.INGEST_MAX_BODY_BYTES
    # Refused by its declared length before reading anything.
    if content_length is not None and content_length > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    # One byte past the limit tells a body without a length (chunked) that is too large.
    body = read(limit + 1)
    if len(body) > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    return body


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # arrays or objects nested a thousand deep
        raise BodyError(400, "body is not valid JSON: nested too deeply") from exc


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
