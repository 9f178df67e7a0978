"""`GET /api/v1/budgets/status[?team=]`: what a gateway checks before it lets a call through."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from budgets.openapi import BUDGET_STATUS_SCHEMA
from budgets.selectors import budget_status
from core.api import ReadView
from core.query import text_param


class BudgetStatusView(ReadView):
    @extend_schema(**BUDGET_STATUS_SCHEMA)
    def get(self, request: Request) -> Response:
        team = text_param(request.query_params, "team") or None
        return Response({"budgets": budget_status(self.tenant(request), team=team)})
