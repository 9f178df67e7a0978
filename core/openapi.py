"""OpenAPI pieces every API endpoint shares: the error body and the answers of
authentication, scope, rate limit and storage outages, with the headers that come with them.

Raw schema dicts (drf-spectacular passes them through), written from what the endpoints
answer: `{"detail": "..."}` from DRF and from the ingest fast path alike.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# A read endpoint's 400: DRF's validation errors, the bad parameter's name to its messages.
PARAMETER_ERRORS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "description": "Each bad parameter's name, with what is wrong with it.",
}
DECIMAL: dict[str, Any] = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "A decimal in plain digits, never in exponent notation.",
}

WWW_AUTHENTICATE = OpenApiParameter(
    "WWW-Authenticate",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[401],
    required=True,
    description='`Bearer realm="costboard"`',
)
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429, 503],
    required=True,
    description="Seconds to wait before retrying.",
)
RESPONSE_HEADERS = [WWW_AUTHENTICATE, RETRY_AFTER]


def error(description: str, body: dict[str, Any] = ERROR) -> OpenApiResponse:
    return OpenApiResponse(response=body, description=description)


def access_errors(scope: str) -> dict[int, OpenApiResponse]:
    """401, 403, 429 and 503: what any endpoint answers before it looks at the request."""
    return {
        401: error("No API key, or an unknown or revoked one (or no session)."),
        403: error(f"An API key whose scope is not {scope!r}."),
        429: error("Past the key's rate limit: retry after `Retry-After` seconds."),
        503: error("Storage is down: nothing was stored, retry after `Retry-After` seconds."),
    }
