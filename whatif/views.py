"""`/whatif/` and `GET /api/v1/whatif`: the scope's usage re-priced on candidate models."""

from __future__ import annotations

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
from dashboard.filters import RANGES, Filters, parse_filters
from pricing.catalog_updates import catalog_data_date
from tenants.context import TenantContext
from tenants.labels import TeamLabels
from tenants.models import Tenant
from whatif import present
from whatif.defaults import BadModels, default_models, parse_models
from whatif.selectors import Comparison, compare

NO_ENDPOINT = (
    "the comparison reads rollups, which are kept per team, feature, model and environment, "
    "not per endpoint"
)


def _compare(tenant: Tenant, f: Filters, models: str) -> tuple[Comparison, str]:
    teams = TeamLabels.of(tenant)
    models = models or ",".join(default_models(tenant, f, teams))
    return compare(tenant, f, teams, parse_models(tenant, models)), models


@member_view()
@replica.read_view
def whatif(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    f, teams = parse_filters(request.GET), TeamLabels.of(ctx.tenant)
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


def api_filters(params: QueryDict) -> Filters:
    """The API's from/to (days) and page filters; a bad value is a 400 naming it."""
    if params.get("endpoint"):
        raise ValidationError({"endpoint": [NO_ENDPOINT]})
    query = params.copy()
    if "from" in params or "to" in params:
        # One end alone: from that day to today, or the 30 days up to that day.
        today = datetime.now(UTC).date()
        query.setdefault("to", today.isoformat())
        query.setdefault("from", _days_before(params.get("to", ""), 29))
        query["range"] = "custom"
    f = parse_filters(query)
    for message in f.errors:
        raise ValidationError({"to" if "'to'" in message else "from": [message]})
    return f


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
    *(OpenApiParameter(n, str) for n in ("team", "feature", "model", "environment")),
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
        f = api_filters(request.query_params)
        try:
            with replica.reads():  # figures only: the replica while it is fresh enough
                comparison, _ = _compare(
                    self.tenant(request), f, request.query_params.get("models", "")
                )
        except BadModels as exc:
            raise ValidationError({"models": [str(exc)]}) from None
        return Response(present.answer(comparison))
