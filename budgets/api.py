"""`GET /api/v1/budgets/status[?team=]`: what a gateway checks before it lets a call through."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from budgets.selectors import budget_status
from core.api import ReadView
from core.query import text_param


class BudgetStatusView(ReadView):
    @extend_schema(
        parameters=[OpenApiParameter("team", OpenApiTypes.STR, description="team slug")],
        responses={200: OpenApiTypes.OBJECT},
        description="Spend, limit, ratio and forecast of every budget in its current period.",
    )
    def get(self, request: Request) -> Response:
        team = text_param(request.query_params, "team") or None
        return Response({"budgets": budget_status(self.tenant(request), team=team)})
