"""The OpenAPI description of `GET /api/v1/budgets/status`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from core.openapi import DECIMAL, RESPONSE_HEADERS, access_errors

_NULLABLE_TEXT: dict[str, Any] = {"type": "string", "nullable": True}
BUDGET: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "scope": {"type": "string"},
        "team": _NULLABLE_TEXT,
        "feature": _NULLABLE_TEXT,
        "endpoint": _NULLABLE_TEXT,
        "tag_key": _NULLABLE_TEXT,
        "tag_value": {**_NULLABLE_TEXT, "description": '"" counts calls without the tag.'},
        "period": {"type": "string"},
        "period_start": {"type": "string", "format": "date-time"},
        "period_end": {"type": "string", "format": "date-time"},
        "limit_usd": DECIMAL,
        "spend_usd": DECIMAL,
        "ratio": DECIMAL,
        "forecast_usd": DECIMAL,
        "exceed_on": {**_NULLABLE_TEXT, "description": "The day the forecast crosses the limit."},
        "over_budget": {"type": "boolean"},
        "evaluated_at": {"type": "string", "format": "date-time"},
        "suspended": {
            **_NULLABLE_TEXT,
            "description": "Why the budget is not evaluated (its tag key is no longer a tag "
            "dimension): spend and forecast are then 0 and no alert fires.",
        },
    },
    "required": ["id", "period", "limit_usd", "spend_usd", "ratio", "forecast_usd"],
}
BUDGET_STATUS_SCHEMA: dict[str, Any] = {
    "parameters": [
        OpenApiParameter("team", OpenApiTypes.STR, description="Only this team's budgets (slug)."),
        *RESPONSE_HEADERS,
    ],
    "responses": {
        200: OpenApiResponse(
            {
                "type": "object",
                "properties": {"budgets": {"type": "array", "items": BUDGET}},
                "required": ["budgets"],
            },
            "Every budget in its current period.",
        ),
        **access_errors("read"),
    },
    "description": "Spend, limit, ratio and forecast of every budget in its current period: "
    "what a gateway checks before it lets a call through.",
}
