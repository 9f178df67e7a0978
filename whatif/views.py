"""`/whatif/` and `GET /api/v1/whatif`: the scope's usage re-priced on candidate models."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core import replica
from core.api import ReadView
from core.dates import BadDate, parse_day
from core.openapi import PARAMETER_ERRORS, RESPONSE_HEADERS, access_errors, error
from core.pages import member_view
from dashboard import selectors as pages
from dashboard.filters import DIMENSION_FILTERS, RANGES, Filters, parse_filters
from pricing.catalog_updates import catalog_data_date
from rollups.tag_selectors import TAG_FILTER_PREFIX
from rollups.tag_sql import chosen_keys
from tenants.context import TenantContext
from tenants.labels import TeamLabels
from tenants.models import Tenant
from whatif import present
from whatif.defaults import BadModels, default_models, parse_models
from whatif.selectors import Comparison, compare


def _compare(tenant: Tenant, f: Filters, models: str) -> tuple[Comparison, str]:
    teams = TeamLabels.of(tenant)
    models = models or ",".join(default_models(tenant, f, teams))
    return compare(tenant, f, teams, parse_models(tenant, models)), models


@member_view()
@replica.read_view
def whatif(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    f = parse_filters(request.GET, tag_keys=chosen_keys(ctx.tenant.pk))
    teams = TeamLabels.of(ctx.tenant)
    page: dict[str, Any] = {
        "ctx": ctx,
        "f": f,
        "ranges": RANGES,
        "choices": pages.filter_choices(ctx.tenant, teams),
        "models": request.GET.get("models", ""),
        "catalog": catalog_data_date(),
    }
    try:
        comparison, page["models"] = _compare(ctx.tenant, f, page["models"])
    except BadModels as exc:
        page["error"] = f"Models: {exc}."
        return render(request, "whatif/whatif.html", page, status=400)
    page.update(
        c=comparison,
        answer=present.answer(comparison),
        figures={"whatif": present.chart(comparison)} if comparison.requests else {},
    )
    return render(request, "whatif/whatif.html", page)


def api_filters(params: QueryDict, tag_keys: Collection[str] = ()) -> Filters:
    """The API's from/to (days) and page filters (a `tag.<key>=` of `tag_keys` too); a bad
    value is a 400 naming it."""
    query = params.copy()
    if "from" in params or "to" in params:
        # One end alone: from that day to today, or the 30 days up to that day.
        today = datetime.now(UTC).date()
        query.setdefault("to", today.isoformat())
        query.setdefault("from", _days_before(params.get("to", ""), 29))
        query["range"] = "custom"
    f = parse_filters(query, tag_keys=tag_keys)
    for message in f.errors:
        raise ValidationError({_field_of(message): [message]})
    return f


def _field_of(message: str) -> str:
    """The parameter a filter's message is about (they name it first, or quote it)."""
    head = message.split(":", 1)[0]
    if head == "status" or head.startswith(TAG_FILTER_PREFIX):
        return head
    return "to" if "'to'" in message else "from"


def _days_before(day: str, days: int) -> str:
    try:
        end = parse_day(day)
    except BadDate:
        end = datetime.now(UTC).date()  # the bad `to` is named by parse_filters
    return (end - timedelta(days=days)).isoformat()


WHATIF_PARAMS = [
    OpenApiParameter("from", str, description="first day, YYYY-MM-DD (default: 30 days ago)"),
    OpenApiParameter("to", str, description="last day, YYYY-MM-DD, included"),
    OpenApiParameter("models", str, description="provider/model,… (default: the page's)"),
    *(OpenApiParameter(n, str) for n in DIMENSION_FILTERS),
    OpenApiParameter("tag.<key>", str, description="one value of a chosen tag key"),
]


class WhatIfView(ReadView):
    @extend_schema(
        parameters=[*WHATIF_PARAMS, *RESPONSE_HEADERS],
        responses={
            200: OpenApiResponse(dict, "Actual spend and each candidate's cost and delta."),
            400: error("A bad parameter, named.", PARAMETER_ERRORS),
            **access_errors("read"),
        },
        summary="Model what-if",
    )
    def get(self, request: Request) -> Response:
        tenant = self.tenant(request)
        f = api_filters(request.query_params, chosen_keys(tenant.pk))
        try:
            with replica.reads():  # figures only: the replica while it is fresh enough
                comparison, _ = _compare(tenant, f, request.query_params.get("models", ""))
        except BadModels as exc:
            raise ValidationError({"models": [str(exc)]}) from None
        return Response(present.answer(comparison))
