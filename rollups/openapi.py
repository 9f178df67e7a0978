"""The OpenAPI description of `GET /api/v1/usage`: its parameters, rows and errors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from core import dates
from core.openapi import DECIMAL, PARAMETER_ERRORS, RESPONSE_HEADERS, access_errors, error
from rollups import statuses
from rollups.selectors import FILTERS, GRANULARITIES, GROUPS, TOKEN_SUMS, USER_DIMENSIONS

# Empty is the default, as if the parameter were not sent.
INSTANT: dict[str, Any] = {"type": "string", "pattern": f"^({dates.INSTANT_PATTERN[1:-1]})?$"}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
USAGE_ROW: dict[str, Any] = {
    "type": "object",
    "description": "One period and group: each `group_by` dimension's value, then the sums "
    "(per user: requests, input and output tokens and cost only).",
    "properties": {
        "period": {"type": "string", "description": "The period's start: a date or a time."},
        "granularity": {"type": "string", "enum": list(GRANULARITIES)},
        "cost_usd": DECIMAL,
        "requests": _COUNT,
        "errors": _COUNT,
        "unpriced_requests": _COUNT,
        **{name: _COUNT for name in TOKEN_SUMS},
    },
    "additionalProperties": {"type": "string", "nullable": True},
    "required": ["period", "granularity", "cost_usd", "requests"],
}
USAGE_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "granularity": {"type": "string", "enum": list(GRANULARITIES)},
        "group_by": {"type": "array", "items": {"type": "string"}},
        "filters": {
            "type": "object",
            "description": "The filters the rows are narrowed by, as sent.",
            "additionalProperties": {"type": "string"},
        },
        "rows": {"type": "array", "items": USAGE_ROW},
    },
    "required": ["from", "to", "granularity", "group_by", "filters", "rows"],
}
LIMITS = (
    f"Dates from {dates.EARLIEST_DAY} to {dates.LATEST_DAY}; a range of at most "
    f"{dates.MAX_RANGE_DAYS} days, {dates.MAX_HOURLY_DAYS} per hour."
)
GROUP_BY = (
    f"Comma-separated: {','.join(GROUPS)}. `model` is the canonical model (the price "
    "catalog's id: gpt-4o-2024-08-06 and gpt-4o are gpt-4o; a model the catalog does not "
    "know keeps its name), `model_name` the name calls reported, `model_family` a coarse "
    "grouping (GPT-4o, Claude 3.5, ...) from built-in rules and the tenant's own. `status` is "
    f"the status class of the call: {', '.join(n for n in statuses.NAMES if n)} "
    '(other: a code outside 100-599; "" on rows rolled up before status classes were '
    "kept). `user` combines with team and environment only. `tag:<key>` groups by one of "
    "the tenant's tag dimensions (one tag key per query; rows then carry `tag:<key>`)."
)
# Empty is the default, as if the parameter were not sent.
STATUS: dict[str, Any] = {"type": "string", "enum": list(statuses.NAMES)}
FILTER_WORDS = {
    name: f"Only rows whose {name.replace('_', ' ')} is this (as `group_by` names it)."
    + (" With group_by=user, only these filters apply." if name in USER_DIMENSIONS else "")
    for name in FILTERS
}
FILTER_WORDS["team"] += " A team that does not exist is a 400."
USAGE_SCHEMA: dict[str, Any] = {
    "parameters": [
        OpenApiParameter(
            "from",
            INSTANT,
            description="Start: a date or an RFC 3339 time (UTC without an offset); "
            "default 7 days before `to`.",
        ),
        OpenApiParameter("to", INSTANT, description="End, exclusive; default: tomorrow, 0:00 UTC."),
        OpenApiParameter("group_by", OpenApiTypes.STR, description=GROUP_BY),
        OpenApiParameter("granularity", OpenApiTypes.STR, enum=list(GRANULARITIES)),
        *(
            OpenApiParameter(
                name,
                STATUS if name == "status" else OpenApiTypes.STR,
                description=FILTER_WORDS[name],
            )
            for name in FILTERS
        ),
        *RESPONSE_HEADERS,
    ],
    "responses": {
        200: OpenApiResponse(USAGE_ANSWER, "Usage per period and group, from the rollups."),
        400: error(f"A bad parameter, named. {LIMITS}", PARAMETER_ERRORS),
        **access_errors("read"),
    },
    "description": f"Usage from the rollups, for a read key or a signed-in member. {LIMITS} "
    "`tag.<key>=<value>` keeps the usage of one value of a tag dimension (`(none)`: events "
    "without the key, `(other)`: values beyond the daily cap); a key that is not one of the "
    "tenant's tag dimensions, or a second tag key, is a 400 naming the parameter.",
}
