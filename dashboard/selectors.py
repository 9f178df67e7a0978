"""Aggregations the pages show, over the rollups only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from rollups.models import DailyRollup
from rollups.selectors import team_slugs
from tenants.models import Tenant


@dataclass(frozen=True)
class Overview:
    month_to_date: Decimal
    last_30_days: Decimal
    requests_30_days: int
    daily: list[dict[str, Any]]
    top_teams: list[dict[str, Any]]
    top_models: list[dict[str, Any]]
    unpriced_models: list[dict[str, Any]]


def _total(rows: Any) -> Decimal:
    return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)


def overview(tenant: Tenant, today: date | None = None) -> Overview:
    today = today or timezone.now().date()
    rollups = DailyRollup.objects.for_tenant(tenant)
    window = rollups.filter(day__gt=today - timedelta(days=30), day__lte=today)
    slugs = team_slugs(tenant)
    top_teams = list(window.values("team_pk").annotate(cost=Sum("cost_usd")).order_by("-cost")[:10])
    for row in top_teams:
        row["team"] = slugs.get(row["team_pk"], "?")
    return Overview(
        month_to_date=_total(rollups.filter(day__gte=today.replace(day=1), day__lte=today)),
        last_30_days=_total(window),
        requests_30_days=window.aggregate(n=Sum("requests"))["n"] or 0,
        daily=list(window.values("day").annotate(cost=Sum("cost_usd")).order_by("day")),
        top_teams=top_teams,
        top_models=list(
            window.values("provider", "model").annotate(cost=Sum("cost_usd")).order_by("-cost")[:10]
        ),
        unpriced_models=list(
            window.filter(unpriced_requests__gt=0)
            .values("provider", "model")
            .annotate(requests=Sum("unpriced_requests"), tokens=Sum("unpriced_tokens"))
            .order_by("-requests")
        ),
    )
