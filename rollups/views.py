"""`GET /api/v1/usage`: usage from the rollups for a read-scope key or a signed-in member."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core import dates, replica
from core.api import ReadView
from core.query import text_param
from rollups import statuses
from rollups.openapi import USAGE_SCHEMA
from rollups.selectors import (
    FILTERS,
    GRANULARITIES,
    GROUPS,
    USER_DIMENSIONS,
    UsageQuery,
    usage_rows,
)
from rollups.tag_selectors import TAG_GROUP_PREFIX, tag_usage_rows
from rollups.tag_views import tag_query
from tenants.labels import TeamLabels
from tenants.models import Tenant

DEFAULT_RANGE = timedelta(days=7)


def parse_instant(value: str | None, name: str, default: datetime) -> datetime:
    if not value:
        return default
    try:
        return dates.parse_instant(value)
    except dates.BadDate as exc:
        raise ValidationError({name: [str(exc)]}) from None


def usage_query(params: Any, tenant: Tenant) -> UsageQuery:
    today = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC) + timedelta(days=1)
    end = parse_instant(params.get("to"), "to", today)
    start = parse_instant(params.get("from"), "from", end - DEFAULT_RANGE)
    if start >= end:
        raise ValidationError({"from": ["must be before to"]})
    # Each group once: a repeated one would repeat in the answer as often as it was typed.
    named = (g.strip() for g in params.get("group_by", "").split(","))
    group_by = tuple(dict.fromkeys(g for g in named if g))
    unknown = [g for g in group_by if g not in GROUPS and not g.startswith(TAG_GROUP_PREFIX)]
    if unknown:
        choices = ", ".join([*GROUPS, f"{TAG_GROUP_PREFIX}<key>"])
        raise ValidationError({"group_by": [f"unknown {unknown}; choose from {choices}"]})
    granularity = params.get("granularity", "day")
    if granularity not in GRANULARITIES:
        raise ValidationError({"granularity": ["must be hour, day or month"]})
    _check_span(end - start, granularity)
    _check_user_grouping(group_by, granularity)
    filters = usage_filters(params, tenant, group_by)
    return UsageQuery(
        start=start, end=end, group_by=group_by, granularity=granularity, filters=filters
    )


def usage_filters(params: Any, tenant: Tenant, group_by: tuple[str, ...]) -> dict[str, Any]:
    """The filters sent (empty ones are not filters), checked; a team as its pk."""
    filters: dict[str, Any] = dict(_sent_filters(params))
    status = filters.get("status")
    if status is not None and status not in statuses.NAMES:
        choices = ", ".join(n for n in statuses.NAMES if n)
        raise ValidationError({"status": [f"unknown {status!r}; choose from {choices}"]})
    if "team" in filters:
        team_pk = TeamLabels.of(tenant).pk(filters["team"])
        if team_pk is None:
            raise ValidationError({"team": [f"no team {filters['team']!r}"]})
        filters["team"] = team_pk
    if "user" in group_by:
        # Per-user figures are kept by team and environment only.
        extra = sorted(set(filters) - set(USER_DIMENSIONS))
        if extra:
            raise ValidationError(
                {extra[0]: ["group_by=user can be filtered by team and environment only"]}
            )
    return filters


def _check_span(span: timedelta, granularity: str) -> None:
    # An answer's size must not grow with the range a client asks for (core.dates).
    if span > dates.MAX_RANGE:
        raise ValidationError({"from": [f"must be at most {dates.MAX_RANGE_DAYS} days before to"]})
    if granularity == "hour" and span > dates.MAX_HOURLY_RANGE:
        raise ValidationError(
            {"granularity": [f"hour covers at most {dates.MAX_HOURLY_DAYS} days; use day"]}
        )


def _check_user_grouping(group_by: tuple[str, ...], granularity: str) -> None:
    # Per-user figures are kept per day, by team and environment (not by model or feature).
    if "user" not in group_by:
        return
    if granularity == "hour":
        raise ValidationError({"granularity": ["group_by=user is available per day or month"]})
    extra = set(group_by) - {"user", "team", "environment"}
    if extra:
        raise ValidationError(
            {"group_by": [f"user can be combined with team and environment, not {sorted(extra)}"]}
        )


class UsageView(ReadView):
    @extend_schema(**USAGE_SCHEMA)
    def get(self, request: Request) -> Response:
        tenant = self.tenant(request)
        query = usage_query(request.query_params, tenant)
        tag = tag_query(request.query_params, query, tenant)
        with replica.reads():  # figures only: the replica while it is fresh enough
            rows = usage_rows(tenant, query) if tag is None else tag_usage_rows(tenant, query, tag)
        return Response(
            {
                "from": query.start.isoformat(),
                "to": query.end.isoformat(),
                "granularity": query.granularity,
                "group_by": list(query.group_by),
                "filters": _sent_filters(request.query_params),
                "rows": rows,
            }
        )


def _sent_filters(params: Any) -> dict[str, str]:
    """The filters the answer is narrowed by, as they were sent."""
    return {name: value for name in FILTERS if (value := text_param(params, name))}
