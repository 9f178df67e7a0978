"""Budgets: evaluation, thresholds that fire exactly once, the status API, pages and command."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from alerts.models import Alert, AlertChannel, Delivery
from budgets import selectors
from budgets.models import Budget, BudgetAlert
from budgets.services import evaluate_and_alert, set_budget
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from tests.conftest import World, event, login


def _spend(world: World, dollars: int, team: str = "search", at: datetime | None = None) -> None:
    """Spend about `dollars` (gpt-4o at $2.50 in / $10 out per MTok: $1 = 100k out tokens)."""
    at = at or datetime.now(UTC) - timedelta(minutes=5)
    calls = [
        event(
            f"{team}-{at.timestamp()}-{i}",
            team=team,
            timestamp=at.isoformat(),
            input_tokens=0,
            output_tokens=100_000,
        )
        for i in range(dollars)
    ]
    ingest_events(world.ingest.key, calls)
    roll_up_all_pending(world.tenant.pk)


def _budget(world: World, amount: str = "10") -> Budget:
    budget, _ = set_budget(world.tenant, amount=Decimal(amount), team=world.team)
    return budget


def _fired(world: World) -> list[int]:
    return sorted(BudgetAlert.objects.for_tenant(world.tenant).values_list("threshold", flat=True))


def test_it_fires_each_crossed_threshold_once_per_period(world: World) -> None:
    budget = _budget(world)
    _spend(world, 6)
    evaluate_and_alert(budget)
    # 50% reached, and at this pace the month overruns: the forecast alert (0) fires too.
    assert _fired(world) == [0, 50]
    _spend(world, 4)
    for _ in range(3):
        evaluate_and_alert(budget)
    assert _fired(world) == [0, 50, 75, 90, 100]
    assert Alert.objects.for_tenant(world.tenant).count() == 5
    titles = list(Alert.objects.for_tenant(world.tenant).values_list("title", "severity"))
    assert ("Search (monthly): 100% of $10.00 reached ($10.00)", "critical") in titles


def test_it_only_counts_the_budgets_own_scope(world: World) -> None:
    from tenants.services import create_team

    create_team(world.tenant, "support")
    budget = _budget(world)
    _spend(world, 8, team="support")
    _spend(world, 8, team="search", at=datetime.now(UTC) - timedelta(days=40))  # last period
    result = evaluate_and_alert(budget)
    assert result.spend == 0
    assert not BudgetAlert.objects.for_tenant(world.tenant).exists()


@pytest.mark.django_db(transaction=True)
def test_it_notifies_once_with_two_evaluators_racing(world: World) -> None:
    channel = AlertChannel.objects.create(
        tenant=world.tenant, name="ops", kind="email", target="ops@example.com"
    )
    budget = _budget(world)
    budget.channels.add(channel)
    _spend(world, 11)
    barrier = threading.Barrier(2)

    def evaluator() -> None:
        try:
            barrier.wait()
            evaluate_and_alert(
                Budget.objects.for_tenant(world.tenant).select_related("tenant").get(pk=budget.pk)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert BudgetAlert.objects.for_tenant(world.tenant).count() == 4  # 110%: no forecast alert
    assert Delivery.objects.for_tenant(world.tenant).count() == 4  # one per threshold, not eight


def test_it_serves_budget_status_to_a_gateway(world: World) -> None:
    budget = _budget(world, "20")
    _spend(world, 5)
    evaluate_and_alert(budget)
    response = Client().get("/api/v1/budgets/status?team=search", **world.read.auth)
    assert response.status_code == 200
    (status,) = response.json()["budgets"]
    assert (status["team"], status["limit_usd"], status["ratio"]) == ("search", "20.00", "0.2500")
    assert Decimal(status["spend_usd"]) == Decimal(5) and status["over_budget"] is False
    assert Decimal(status["forecast_usd"]) >= Decimal(5)
    assert Client().get("/api/v1/budgets/status?team=other", **world.read.auth).json() == {
        "budgets": []
    }


def test_it_prints_a_budget_without_spend_in_plain_decimals(world: World) -> None:
    evaluate_and_alert(_budget(world, "0.01"))
    response = Client().get("/api/v1/budgets/status", **world.read.auth)
    (status,) = response.json()["budgets"]
    figures = [status[k] for k in ("limit_usd", "spend_usd", "ratio", "forecast_usd")]
    assert figures == ["0.01", "0.000000", "0.0000", "0.000000"]


def test_it_answers_a_team_name_with_a_nul_character(world: World) -> None:
    response = Client().get("/api/v1/budgets/status?team=search%00", **world.read.auth)
    assert response.status_code == 200


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_it_reuses_a_status_answer_for_a_second_then_shows_new_spend(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A gateway asks before every LLM call: each process answers from its last evaluation
    # read for up to STATUS_REUSE_SECONDS, then reads again.
    clock = _Clock()
    monkeypatch.setattr(selectors, "time", clock)

    def ratio() -> str:
        response = Client().get("/api/v1/budgets/status?team=search", **world.read.auth)
        return response.json()["budgets"][0]["ratio"]

    budget = _budget(world, "20")
    _spend(world, 5)
    evaluate_and_alert(budget)
    assert ratio() == "0.2500"
    _spend(world, 5, at=datetime.now(UTC) - timedelta(minutes=4))
    evaluate_and_alert(budget)
    clock.now += selectors.STATUS_REUSE_SECONDS / 2
    assert ratio() == "0.2500"
    clock.now += selectors.STATUS_REUSE_SECONDS
    assert ratio() == "0.5000"


def test_it_keeps_budget_status_to_its_tenant(world: World) -> None:
    _budget(world)
    # The owner's answer is kept for a second: it must never be another tenant's.
    assert len(Client().get("/api/v1/budgets/status", **world.read.auth).json()["budgets"]) == 1
    assert Client().get("/api/v1/budgets/status", **world.other_read.auth).json() == {"budgets": []}
    assert Client().get("/api/v1/budgets/status", **world.ingest.auth).status_code == 403
    assert Client().get("/api/v1/budgets/status").status_code == 401


def test_it_shows_budgets_to_every_role_and_lets_only_admins_edit(world: World) -> None:
    budget = _budget(world)
    _spend(world, 6)
    evaluate_and_alert(budget)
    for username in ("owner", "finance", "member"):
        page = login(username).get("/budgets/").content.decode()
        assert "Search (monthly)" in page and "50%" in page
    assert login("member").get("/budgets/new/").status_code == 403
    assert login("finance").post(f"/budgets/{budget.pk}/delete/").status_code == 403
    response = login("owner").post(
        "/budgets/new/",
        {
            "name": "Chat cap",
            "scope": "feature",
            "feature": "chat",
            "period": "day",
            "amount_usd": "3",
            "thresholds": "80, 100",
            "forecast_alert": "on",
        },
    )
    assert response.status_code == 302
    created = Budget.objects.for_tenant(world.tenant).get(name="Chat cap")
    assert (created.scope, created.period, created.thresholds) == ("feature", "day", [80, 100])


def test_it_explains_a_bad_budget_form(world: World) -> None:
    response = login("owner").post(
        "/budgets/new/",
        {
            "name": "x",
            "scope": "team",
            "period": "month",
            "amount_usd": "-1",
            "thresholds": "fifty",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Choose the team" in page and "more than zero" in page and "whole percentages" in page


def test_it_answers_404_for_another_tenants_budget(world: World) -> None:
    budget, _ = set_budget(world.other_tenant, amount=Decimal(5))
    assert login("owner").get(f"/budgets/{budget.pk}/").status_code == 404
    assert login("owner").post(f"/budgets/{budget.pk}/delete/").status_code == 404
    assert Budget.objects.for_tenant(world.other_tenant).exists()


def test_it_sets_budgets_from_the_command_line(world: World) -> None:
    out = StringIO()
    call_command("set_budget", "acme", "--team", "search", "--amount", "1500", stdout=out)
    call_command("set_budget", "acme", "--team", "search", "--amount", "1750.5", stdout=out)
    call_command(
        "set_budget", "acme", "--feature", "chat", "--amount", "20", "--period", "day", stdout=out
    )
    assert "created" in out.getvalue() and "updated" in out.getvalue()
    rows = Budget.objects.for_tenant(world.tenant).order_by("scope")
    assert [(b.scope, b.period, b.amount_usd) for b in rows] == [
        ("feature", "day", Decimal("20.00")),
        ("team", "month", Decimal("1750.50")),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("acme", "--amount", "lots"), "number of USD"),
        (("acme", "--amount", "0"), "more than zero"),
        (("acme", "--amount", "5", "--team", "ghost"), "team 'ghost' does not exist"),
        (("nope", "--amount", "5"), "tenant 'nope' does not exist"),
    ],
)
def test_it_refuses_bad_budget_arguments(world: World, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("set_budget", *args, stdout=StringIO())
