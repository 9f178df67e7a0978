"""Budget writes: create budgets, evaluate them, and fire each threshold once per period."""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from alerts.models import Severity
from alerts.services import notify
from audit.models import Action
from audit.services import Actor, record
from budgets.models import FORECAST_THRESHOLD, Budget, BudgetAlert, BudgetStatus
from rollups.forecast import exceed_date, forecast_day_end, forecast_period_end
from rollups.models import HourlyRollup, TagDimension, TagHourlyRollup
from tenants.models import Team, Tenant

ZERO = Decimal(0)
HISTORY_DAYS = 35


@transaction.atomic
def set_budget(
    tenant: Tenant,
    *,
    amount: Decimal,
    team: Team | None = None,
    feature: str = "",
    endpoint: str = "",
    tag: tuple[str, str] | None = None,
    period: str = Budget.Period.MONTH,
    name: str = "",
    actor: Actor = None,
) -> tuple[Budget, bool]:
    """Create or update the budget of a scope and period (what `set_budget` does); `tag` is
    (key, value) of a chosen tag key, checked by the caller."""
    scope = _scope(team, feature, endpoint, tag)
    tag_key, tag_value = tag or ("", "")
    budget, created = Budget.objects.for_tenant(tenant).update_or_create(
        scope=scope,
        team=team,
        feature=feature,
        endpoint=endpoint,
        tag_key=tag_key,
        tag_value=tag_value,
        period=period,
        defaults={"amount_usd": amount, "tenant": tenant},
    )
    if created or name:
        budget.name = name or _default_name(budget)
        budget.save(update_fields=["name"])
    record_budget(budget, created, actor=actor)
    return budget, created


def record_budget(budget: Budget, created: bool, *, actor: Actor = None) -> None:
    action = Action.BUDGET_CREATED if created else Action.BUDGET_CHANGED
    details = {"amount_usd": str(budget.amount_usd), "period": budget.period}
    record(budget.tenant, actor, action, budget.name, details)


@transaction.atomic
def save_budget(
    budget: Budget, save_channels: Callable[[], None], *, actor: Actor = None
) -> Budget:
    """Store a budget the edit page validated (`save_channels`: its form's save_m2m), and
    log it."""
    created = budget.pk is None
    budget.save()
    save_channels()
    record_budget(budget, created, actor=actor)
    return budget


@transaction.atomic
def delete_budget(budget: Budget, *, actor: Actor = None) -> None:
    details = {"amount_usd": str(budget.amount_usd), "period": budget.period}
    budget.delete()
    record(budget.tenant, actor, Action.BUDGET_DELETED, budget.name, details)


def scope_subject(budget: Budget) -> str:
    """What the budget counts, as its page and alerts name it."""
    if budget.scope == Budget.Scope.TAG:
        return f"{budget.tag_key}={budget.tag_value or '(none)'}"
    if budget.scope == Budget.Scope.ENDPOINT:
        return budget.endpoint
    return budget.team.slug if budget.team else budget.feature


def _scope(team: Team | None, feature: str, endpoint: str, tag: tuple[str, str] | None) -> str:
    if team:
        return Budget.Scope.TEAM
    if feature:
        return Budget.Scope.FEATURE
    if endpoint:
        return Budget.Scope.ENDPOINT
    return Budget.Scope.TAG if tag else Budget.Scope.TENANT


def _default_name(budget: Budget) -> str:
    subject = budget.team.name if budget.team else scope_subject(budget) or "Whole tenant"
    return f"{subject} ({'monthly' if budget.period == Budget.Period.MONTH else 'daily'})"


@dataclass(frozen=True)
class Window:
    start: datetime  # aware, UTC
    end: datetime
    tz: zoneinfo.ZoneInfo


def period_window(budget: Budget, now: datetime) -> Window:
    """The current period in the tenant's time zone, as UTC instants."""
    tz = zoneinfo.ZoneInfo(budget.tenant.timezone)
    local = now.astimezone(tz)
    if budget.period == Budget.Period.DAY:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=1, hours=2)).replace(hour=0)
    else:
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
    return Window(start.astimezone(UTC), end.astimezone(UTC), tz)


def scoped_rollups(budget: Budget) -> QuerySet[Any]:
    """The hourly rollups a budget counts: its tenant's, narrowed to its team, feature or
    endpoint, or its tag key's tag rollups narrowed to its tag value."""
    if budget.scope == Budget.Scope.TAG:
        tagged = TagHourlyRollup.objects.for_tenant(budget.tenant_id)
        return tagged.filter(tag_key=budget.tag_key, tag_value=budget.tag_value)
    rows = HourlyRollup.objects.for_tenant(budget.tenant_id)
    if budget.scope == Budget.Scope.TEAM:
        return rows.filter(team_pk=budget.team_id)
    if budget.scope == Budget.Scope.FEATURE:
        return rows.filter(feature=budget.feature)
    if budget.scope == Budget.Scope.ENDPOINT:
        return rows.filter(endpoint=budget.endpoint)
    return rows


def suspended_reason(budget: Budget) -> str:
    """Why the budget cannot be evaluated now ("" when it can).

    A tag key that is no longer chosen stops getting tag rollups: its budget would read $0
    and never alert, so it is suspended (and says so) until the key is chosen again."""
    if budget.scope != Budget.Scope.TAG:
        return ""
    keys = TagDimension.objects.for_tenant(budget.tenant_id).filter(key=budget.tag_key)
    if keys.exists():
        return ""
    return (
        f"Not evaluated: tag key {budget.tag_key!r} is no longer a tag dimension. "
        "Choose it again in the settings, or change this budget's scope."
    )


def _scoped_hours(budget: Budget, since: datetime) -> dict[datetime, Decimal]:
    rows = scoped_rollups(budget).filter(hour__gte=since)
    return dict(rows.values("hour").annotate(c=Sum("cost_usd")).values_list("hour", "c").order_by())


@dataclass(frozen=True)
class Evaluation:
    spend: Decimal
    forecast: Decimal
    exceed_on: date | None
    window: Window
    suspended: str = ""  # why nothing was evaluated (`suspended_reason`)


def evaluate(budget: Budget, now: datetime) -> Evaluation:
    """Spend so far in the period and the forecast to its end, from the hourly rollups."""
    window = period_window(budget, now)
    suspended = suspended_reason(budget)
    if suspended:
        return Evaluation(ZERO, ZERO, None, window, suspended)
    hours = _scoped_hours(budget, window.start - timedelta(days=HISTORY_DAYS))
    spend = sum((c for h, c in hours.items() if h >= window.start), ZERO)
    local_now = now.astimezone(window.tz)
    if budget.period == Budget.Period.DAY:
        forecast = _day_forecast(hours, window, local_now, spend)
        exceed = local_now.date() if forecast > budget.amount_usd else None
        return Evaluation(spend, forecast, exceed, window)
    daily: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for hour, cost in hours.items():
        daily[hour.astimezone(window.tz).date()] += cost
    last_day = (window.end.astimezone(window.tz) - timedelta(days=1)).date()
    forecast = forecast_period_end(dict(daily), local_now.date(), last_day, spend)
    exceed = exceed_date(dict(daily), local_now.date(), last_day, spend, budget.amount_usd)
    return Evaluation(spend, forecast, exceed, window)


def _day_forecast(
    hours: dict[datetime, Decimal], window: Window, local_now: datetime, spend: Decimal
) -> Decimal:
    per_hour: dict[int, Decimal] = defaultdict(lambda: ZERO)
    days = 14
    for hour, cost in hours.items():
        if window.start - timedelta(days=days) <= hour < window.start:
            per_hour[hour.astimezone(window.tz).hour] += cost
    return forecast_day_end(dict(per_hour), days, local_now.hour, spend)


def evaluate_and_alert(
    budget: Budget, now: datetime | None = None, fire: bool = True
) -> Evaluation:
    """Store the budget's status and fire every newly crossed threshold, once per period.

    Readers refreshing a stale status pass fire=False: alerts go out from Celery only.
    """
    now = now or timezone.now()
    result = evaluate(budget, now)
    BudgetStatus.objects.for_tenant(budget.tenant_id).update_or_create(
        budget=budget,
        defaults={
            "tenant_id": budget.tenant_id,
            "period_start": result.window.start,
            "period_end": result.window.end,
            "spend_usd": result.spend,
            "forecast_usd": result.forecast,
            "exceed_on": result.exceed_on,
            "evaluated_at": now,
            "suspended": result.suspended,
        },
    )
    for threshold in crossed(budget, result) if fire else []:
        _fire(budget, result, threshold)
    return result


def crossed(budget: Budget, result: Evaluation) -> list[int]:
    if result.suspended:
        return []
    thresholds = [t for t in budget.thresholds if result.spend * 100 >= budget.amount_usd * t]
    if budget.forecast_alert and result.exceed_on is not None and result.spend < budget.amount_usd:
        thresholds.append(FORECAST_THRESHOLD)
    return sorted(thresholds)


def severity_for(threshold: int) -> Severity:
    if threshold >= 100:
        return Severity.CRITICAL
    if threshold >= 90:
        return Severity.ERROR
    return Severity.WARNING


def _fire(budget: Budget, result: Evaluation, threshold: int) -> None:
    """Insert the (budget, period, threshold) row; only the evaluator that inserts it notifies.

    The unique constraint decides, so two evaluators racing, or one restarted after a crash,
    still notify exactly once per threshold and period.
    """
    try:
        with transaction.atomic():
            row = BudgetAlert.objects.create(
                tenant_id=budget.tenant_id,
                budget=budget,
                period_start=result.window.start,
                threshold=threshold,
                spend_usd=result.spend,
            )
            row.alert = notify(
                budget.tenant, budget.channels.all(), **_message(budget, result, threshold)
            )
            row.save(update_fields=["alert"])
    except IntegrityError:
        return  # already fired this period


class _Message(TypedDict):
    """The keyword arguments of `notify` that describe one budget alert."""

    source: str
    title: str
    message: str
    severity: str
    details: dict[str, Any]


def _message(budget: Budget, result: Evaluation, threshold: int) -> _Message:
    spend, amount = (
        result.spend.quantize(Decimal("0.01")),
        budget.amount_usd.quantize(Decimal("0.01")),
    )
    ratio = f"{result.spend / amount:.0%}" if amount else "n/a"
    if threshold == FORECAST_THRESHOLD:
        title = f"{budget.name}: projected to exceed ${amount} on {result.exceed_on}"
        severity = Severity.WARNING
    else:
        title = f"{budget.name}: {threshold}% of ${amount} reached (${spend})"
        severity = severity_for(threshold)
    message = (
        f"Budget {budget.name} has spent ${spend} of ${amount} ({ratio}) this {budget.period}; "
        f"forecast to period end ${result.forecast.quantize(Decimal('0.01'))}."
    )
    details = {
        "budget": budget.name,
        "scope": f"{budget.scope}: {scope_subject(budget)}"
        if scope_subject(budget)
        else budget.scope,
        "threshold": f"{threshold}%" if threshold else "forecast",
        "spend_usd": str(spend),
        "limit_usd": str(amount),
        "forecast_usd": str(result.forecast.quantize(Decimal("0.01"))),
        "period_start": result.window.start.isoformat(),
    }
    return {
        "source": "budget",
        "title": title,
        "message": message,
        "severity": severity,
        "details": details,
    }


def evaluate_tenant(tenant_id: int) -> int:
    budgets = (
        Budget.objects.for_tenant(tenant_id).select_related("tenant").prefetch_related("channels")
    )
    now = timezone.now()
    for budget in budgets:
        evaluate_and_alert(budget, now)
    return len(budgets)
