"""Budgets for the demo tenant: one already over, one projected over, one on track."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_UP, Decimal

from alerts.models import AlertChannel, ChannelKind
from budgets.models import Budget
from budgets.services import evaluate, evaluate_and_alert, set_budget
from tenants.models import Team, Tenant

DOLLAR = Decimal(1)


def _amount(value: Decimal) -> Decimal:
    return max(value, DOLLAR).quantize(DOLLAR, rounding=ROUND_UP)


def set_up_budgets(tenant: Tenant, now: datetime) -> list[Budget]:
    """Budgets sized from the seeded spend, so the demo shows every state, then evaluated."""
    channel, _ = AlertChannel.objects.for_tenant(tenant).get_or_create(
        name="finance mailbox",
        defaults={"tenant": tenant, "kind": ChannelKind.EMAIL, "target": "finance@acme.example"},
    )
    teams = {t.slug: t for t in Team.objects.for_tenant(tenant)}
    budgets = [
        _sized(tenant, teams.get("support"), now, lambda spend, forecast: spend * Decimal("0.8")),
        _sized(tenant, teams.get("platform"), now, lambda spend, forecast: (spend + forecast) / 2),
        _sized(tenant, None, now, lambda spend, forecast: forecast * Decimal("1.5")),
    ]
    for budget in budgets:
        budget.channels.add(channel)
        evaluate_and_alert(budget, now)
    return budgets


def _sized(tenant: Tenant, team: Team | None, now: datetime, size) -> Budget:  # type: ignore[no-untyped-def]
    budget, _ = set_budget(tenant, amount=Decimal(1), team=team)
    result = evaluate(budget, now)
    budget.amount_usd = _amount(size(result.spend, result.forecast))
    budget.save(update_fields=["amount_usd"])
    return budget
