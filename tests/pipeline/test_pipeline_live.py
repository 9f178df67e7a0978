"""The pipeline after ingest, end to end: a POST, a real Celery worker, and everything that
follows a rollup (budgets, alerts, the shared /metrics snapshot) without waiting for beat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client

from alerts.models import Alert
from budgets.models import BudgetAlert, BudgetStatus
from budgets.services import set_budget
from metrics.collector import SNAPSHOT_KEY
from tests.conftest import World, event, post_json
from tests.worker import celery_worker, wait_until

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _dollars(prefix: str, count: int, team: str) -> list[dict[str, object]]:
    """`count` calls of about $1 each (gpt-4o: $10 per million output tokens)."""
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return [
        event(f"{prefix}-{i}", team=team, timestamp=at, input_tokens=0, output_tokens=100_000)
        for i in range(count)
    ]


def test_it_evaluates_budgets_and_refreshes_metrics_after_rolling_up(world: World) -> None:
    budget, _ = set_budget(world.tenant, amount=Decimal("10"), team=world.team)
    other, _ = set_budget(world.other_tenant, amount=Decimal("10"), team=world.other_team)
    with celery_worker():
        answer = post_json(
            Client(), "/api/v1/events", {"events": _dollars("p", 12, "search")}, world.ingest
        )
        assert answer.status_code == 202 and answer.json()["accepted"] == 12
        status = wait_until(
            lambda: BudgetStatus.objects.for_tenant(world.tenant).filter(budget=budget).first(),
            timeout=30,
        )
        snapshot = wait_until(lambda: _snapshot_with_spend(world.tenant.slug), timeout=30)
    assert status.spend_usd == Decimal("12")
    fired = BudgetAlert.objects.for_tenant(world.tenant).values_list("threshold", flat=True)
    assert 100 in set(fired)
    assert Alert.objects.for_tenant(world.tenant).exists()
    assert 'team="search",tenant="acme"} 12.0' in snapshot
    assert world.other_tenant.slug not in snapshot  # it has no usage at all
    # The other tenant's budget saw none of it.
    assert not BudgetStatus.objects.for_tenant(world.other_tenant).filter(budget=other).exists()
    assert not Alert.objects.for_tenant(world.other_tenant).exists()


def _snapshot_with_spend(tenant_slug: str) -> str | None:
    """The shared /metrics text once a refresh after the rollup has put the tenant's spend in
    (no scrape and no beat here: only the pipeline renders it)."""
    snap = cache.get(SNAPSHOT_KEY)
    text = snap[2].decode() if snap else ""
    return text if f'tenant="{tenant_slug}"' in text else None
