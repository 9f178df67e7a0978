"""Budget reads: the status gateways poll, and the budgets page's figures."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils import timezone

from budgets.models import Budget, BudgetAlert, BudgetStatus
from budgets.services import evaluate_and_alert, scope_subject, scoped_rollups
from core.money import decimal_text
from tenants.models import Tenant

STALE_AFTER = timedelta(minutes=10)
# A gateway asks before every LLM call, while the figures change only when a rollup run
# evaluates the budgets (every few seconds): each web process reuses an answer this long.
STATUS_REUSE_SECONDS = 1.0
_answers: dict[tuple[int, datetime, str | None], tuple[float, list[dict[str, Any]]]] = {}


@dataclass(frozen=True)
class BudgetView:
    budget: Budget
    status: BudgetStatus

    @property
    def ratio(self) -> Decimal:
        return (
            self.status.spend_usd / self.budget.amount_usd if self.budget.amount_usd else Decimal(0)
        )

    @property
    def forecast_ratio(self) -> Decimal:
        amount = self.budget.amount_usd
        return self.status.forecast_usd / amount if amount else Decimal(0)

    @property
    def subject(self) -> str:
        return scope_subject(self.budget)

    @property
    def state(self) -> str:
        if self.status.suspended:
            return "suspended"
        if self.ratio >= 1:
            return "over"
        if self.forecast_ratio > 1:
            return "projected-over"
        return "ok"

    def as_api(self) -> dict[str, Any]:
        b, s = self.budget, self.status
        return {
            "id": b.pk,
            "name": b.name,
            "scope": b.scope,
            "team": b.team.slug if b.team else None,
            "feature": b.feature or None,
            "endpoint": b.endpoint or None,
            "tag_key": b.tag_key or None,
            "tag_value": b.tag_value if b.scope == Budget.Scope.TAG else None,
            "period": b.period,
            "period_start": s.period_start.isoformat(),
            "period_end": s.period_end.isoformat(),
            "limit_usd": decimal_text(b.amount_usd),
            "spend_usd": decimal_text(s.spend_usd, 6),
            "ratio": decimal_text(self.ratio, 4),
            "forecast_usd": decimal_text(s.forecast_usd, 6),
            "exceed_on": s.exceed_on.isoformat() if s.exceed_on else None,
            "over_budget": self.ratio >= 1,
            "evaluated_at": s.evaluated_at.isoformat(),
            "suspended": s.suspended or None,
        }


def budget_views(tenant: Tenant, team: str | None = None) -> list[BudgetView]:
    """Every budget with its latest status; a missing or stale status is evaluated now."""
    budgets: QuerySet[Budget] = Budget.objects.for_tenant(tenant).select_related(
        "tenant", "team", "status"
    )
    if team is not None:
        budgets = budgets.filter(team__slug=team)
    now = timezone.now()
    views = []
    for budget in budgets:
        status = getattr(budget, "status", None)
        if status is None or now - status.evaluated_at > STALE_AFTER or now >= status.period_end:
            evaluate_and_alert(budget, now, fire=False)
            status = BudgetStatus.objects.for_tenant(tenant).get(budget=budget)
        views.append(BudgetView(budget, status))
    return views


def budget_status(tenant: Tenant, team: str | None = None) -> list[dict[str, Any]]:
    """The status API's budgets (`budget_views`), reused for STATUS_REUSE_SECONDS.

    The creation time is part of the key so a tenant id handed out again (after the id sequence
    restarts: `manage.py flush`, a restored backup) never sees another tenant's answers."""
    key = (tenant.pk, tenant.created_at, team)
    now = time.monotonic()
    kept = _answers.get(key)
    if kept is not None and kept[0] > now:
        return kept[1]
    answer = [view.as_api() for view in budget_views(tenant, team=team)]
    if len(_answers) >= 4096:  # clients choose the team names: stay bounded
        _answers.clear()
    _answers[key] = (now + STATUS_REUSE_SECONDS, answer)
    return answer


def alert_history(tenant: Tenant, limit: int = 50) -> list[BudgetAlert]:
    rows = BudgetAlert.objects.for_tenant(tenant).select_related("budget", "alert")
    return list(rows.prefetch_related("alert__deliveries__channel")[:limit])


def spend_by_day(view: BudgetView) -> list[tuple[datetime, Decimal]]:
    """Cumulative spend per hour of the current period, for the burn-down chart."""
    budget, status = view.budget, view.status
    rows = scoped_rollups(budget).filter(hour__gte=status.period_start, hour__lt=status.period_end)
    running, points = Decimal(0), []
    for hour, cost in (
        rows.values("hour").annotate(c=Sum("cost_usd")).values_list("hour", "c").order_by("hour")
    ):
        running += cost or 0
        points.append((hour, running))
    return points
