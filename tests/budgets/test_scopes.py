"""Budgets scoped to an endpoint or to one value of a chosen tag key: spend equal to the raw
events' sums, thresholds that fire once, a key no longer chosen, the form and its roles."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.test import Client

from alerts.models import Alert
from budgets.models import Budget, BudgetAlert
from budgets.services import evaluate_and_alert
from ingest.models import UsageEvent
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from rollups.tags import set_tag_dimensions
from tests.conftest import World, event, login

ENDPOINTS = ["/v1/chat", "/v1/search", "/v1/summarise"]
TIERS = ["free", "pro", "enterprise"]


def _calls(world: World, n: int, seed: int = 7, **fixed: Any) -> None:
    """`n` calls this period at random endpoints and tiers (some without the tag)."""
    rng = random.Random(seed)
    at = datetime.now(UTC) - timedelta(minutes=5)
    calls = []
    for i in range(n):
        tier = rng.choice([*TIERS, None])
        calls.append(
            event(
                f"s{seed}-{i}",
                timestamp=(at - timedelta(minutes=rng.randint(0, 50))).isoformat(),
                endpoint=rng.choice(ENDPOINTS),
                tags={"customer_tier": tier, "region": "eu"} if tier else {"region": "eu"},
                input_tokens=rng.randint(0, 50_000),
                output_tokens=rng.randint(0, 50_000),
                **fixed,
            )
        )
    ingest_events(world.ingest.key, calls)
    roll_up_all_pending(world.tenant.pk)


def _budget(world: World, amount: str = "1000", **scope: str) -> Budget:
    return Budget.objects.create(
        tenant=world.tenant, name=f"b-{scope}", amount_usd=Decimal(amount), **scope
    )


def _raw(world: World, **filters: Any) -> Decimal:
    rows = UsageEvent.objects.for_tenant(world.tenant).filter(**filters)
    return rows.aggregate(c=Sum("cost_usd"))["c"] or Decimal(0)


def test_it_counts_an_endpoints_spend_as_its_raw_events_sum(world: World) -> None:
    _calls(world, 60)
    for endpoint in ENDPOINTS:
        budget = _budget(world, scope=Budget.Scope.ENDPOINT, endpoint=endpoint)
        spend = evaluate_and_alert(budget, fire=False).spend
        assert spend == _raw(world, endpoint=endpoint) and spend > 0


def test_it_counts_a_tag_values_spend_as_its_raw_events_sum(world: World) -> None:
    set_tag_dimensions(world.tenant, ["customer_tier"])
    _calls(world, 60)
    for tier in TIERS:
        budget = _budget(world, scope=Budget.Scope.TAG, tag_key="customer_tier", tag_value=tier)
        spend = evaluate_and_alert(budget, fire=False).spend
        assert spend == _raw(world, tags__customer_tier=tier) and spend > 0
    untagged = _budget(world, scope=Budget.Scope.TAG, tag_key="customer_tier", tag_value="")
    expected = _raw(world) - sum(_raw(world, tags__customer_tier=t) for t in TIERS)
    assert evaluate_and_alert(untagged, fire=False).spend == expected > 0


def test_it_fires_an_endpoint_budgets_thresholds_once(world: World) -> None:
    # $1 per call: 100k output tokens of gpt-4o.
    budget = _budget(world, "10", scope=Budget.Scope.ENDPOINT, endpoint="/v1/chat")
    calls = [
        event(f"c{i}", endpoint="/v1/chat", input_tokens=0, output_tokens=100_000) for i in range(6)
    ]
    calls += [
        event(f"o{i}", endpoint="/v1/other", input_tokens=0, output_tokens=100_000)
        for i in range(9)
    ]
    ingest_events(world.ingest.key, calls)
    roll_up_all_pending(world.tenant.pk)
    for _ in range(3):
        evaluate_and_alert(budget)
    fired = BudgetAlert.objects.for_tenant(world.tenant).values_list("threshold", flat=True)
    assert sorted(fired) == [0, 50]  # 60%, not 150%: the other endpoint is not counted


def test_it_fires_a_tag_budgets_thresholds_once(world: World) -> None:
    set_tag_dimensions(world.tenant, ["customer_tier"])
    budget = _budget(world, "4", scope=Budget.Scope.TAG, tag_key="customer_tier", tag_value="pro")

    def spend(prefix: str, tier: str, n: int) -> None:
        tags = {"customer_tier": tier}
        calls = [
            event(f"{prefix}{i}", tags=tags, input_tokens=0, output_tokens=100_000)
            for i in range(n)
        ]
        ingest_events(world.ingest.key, calls)
        roll_up_all_pending(world.tenant.pk)
        evaluate_and_alert(budget)
        evaluate_and_alert(budget)

    spend("a", "free", 5)
    assert not BudgetAlert.objects.for_tenant(world.tenant).exists()
    spend("b", "pro", 3)

    def fired() -> list[int]:
        rows = BudgetAlert.objects.for_tenant(world.tenant).values_list("threshold", flat=True)
        return sorted(rows)

    assert fired() == [0, 50, 75]  # $3 of $4: the free tier's $5 is not counted
    spend("c", "pro", 1)
    assert fired() == [0, 50, 75, 90, 100]
    assert Alert.objects.for_tenant(world.tenant).count() == 5


def test_it_suspends_a_tag_budget_whose_key_is_no_longer_chosen(world: World) -> None:
    set_tag_dimensions(world.tenant, ["customer_tier"])
    _calls(world, 30)
    budget = _budget(world, "1", scope=Budget.Scope.TAG, tag_key="customer_tier", tag_value="pro")
    set_tag_dimensions(world.tenant, ["region"])
    result = evaluate_and_alert(budget)
    assert "no longer a tag dimension" in result.suspended
    assert not BudgetAlert.objects.for_tenant(world.tenant).exists()  # $1 exceeded, yet silent
    (status,) = Client().get("/api/v1/budgets/status", **world.read.auth).json()["budgets"]
    assert "customer_tier" in status["suspended"] and status["tag_value"] == "pro"
    page = login("member").get("/budgets/").content.decode()
    assert "Not evaluated" in page and "no longer a tag dimension" in page


def _form(**fields: str) -> dict[str, str]:
    base = {"name": "Scoped", "period": "month", "amount_usd": "50", "thresholds": "50, 100"}
    return base | fields


def test_it_lets_admins_create_endpoint_and_tag_budgets_and_shows_them(world: World) -> None:
    set_tag_dimensions(world.tenant, ["customer_tier"])
    owner = login("owner")
    assert (
        owner.post("/budgets/new/", _form(scope="endpoint", endpoint="/v1/chat")).status_code == 302
    )
    tag = _form(
        name="Free tier", scope="tag", tag_key="customer_tier", tag_value="free", feature="x"
    )
    assert owner.post("/budgets/new/", tag).status_code == 302
    rows = Budget.objects.for_tenant(world.tenant).order_by("scope")
    assert [(b.scope, b.endpoint, b.tag_key, b.tag_value, b.feature) for b in rows] == [
        ("endpoint", "/v1/chat", "", "", ""),
        ("tag", "", "customer_tier", "free", ""),
    ]
    for username in ("owner", "finance", "member"):
        page = login(username).get("/budgets/").content.decode()
        assert "Endpoint: /v1/chat" in page and "Tag value: customer_tier=free" in page
    for username in ("finance", "member"):
        response = login(username).post("/budgets/new/", _form(scope="endpoint", endpoint="/x"))
        assert response.status_code == 403
    assert Budget.objects.for_tenant(world.tenant).count() == 2


def test_it_names_the_field_of_a_bad_tag_or_endpoint_scope(world: World) -> None:
    set_tag_dimensions(world.tenant, ["customer_tier"])
    owner = login("owner")
    cases = [
        (_form(scope="tag", tag_key="region", tag_value="eu"), "tag_key"),
        (_form(scope="tag", tag_key="customer_tier", tag_value="v" * 257), "tag_value"),
        (_form(scope="tag", tag_key="customer_tier"), "tag_value"),
        (_form(scope="endpoint", endpoint="/" * 129), "endpoint"),
        (_form(scope="endpoint"), "endpoint"),
    ]
    for data, field in cases:
        response = owner.post("/budgets/new/", data)
        assert response.status_code == 200, field
        assert list(response.context["form"].errors) == [field]
    assert not Budget.objects.for_tenant(world.tenant).exists()


def test_it_keeps_another_tenants_scoped_budget_out_of_reach(world: World) -> None:
    other = Budget.objects.create(
        tenant=world.other_tenant, name="Globex chat", amount_usd=Decimal(5),
        scope=Budget.Scope.ENDPOINT, endpoint="/v1/chat",
    )  # fmt: skip
    assert login("owner").get(f"/budgets/{other.pk}/").status_code == 404
    assert login("owner").post(f"/budgets/{other.pk}/delete/").status_code == 404
    assert "Globex chat" not in login("owner").get("/budgets/").content.decode()
    assert Client().get("/api/v1/budgets/status", **world.read.auth).json() == {"budgets": []}


def test_it_sets_endpoint_and_tag_budgets_from_the_command_line(world: World) -> None:
    set_tag_dimensions(world.tenant, ["customer_tier"])
    out = StringIO()
    call_command("set_budget", "acme", "--endpoint", "/v1/chat", "--amount", "30", stdout=out)
    call_command("set_budget", "acme", "--tag", "customer_tier=pro", "--amount", "40", stdout=out)
    call_command("set_budget", "acme", "--tag", "customer_tier=pro", "--amount", "45", stdout=out)
    rows = Budget.objects.for_tenant(world.tenant).order_by("scope")
    assert [(b.name, b.endpoint, b.tag_key, b.tag_value, b.amount_usd) for b in rows] == [
        ("/v1/chat (monthly)", "/v1/chat", "", "", Decimal("30.00")),
        ("customer_tier=pro (monthly)", "", "customer_tier", "pro", Decimal("45.00")),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tag", "region=eu"), "not one of the tenant's chosen tag keys"),
        (("--tag", "customer_tier"), "KEY=VALUE"),
        (("--tag", "customer_tier=" + "v" * 257), "over 256 characters"),
        (("--endpoint", "/" * 129), "at most 128 characters"),
    ],
)
def test_it_refuses_bad_scoped_budget_arguments(
    world: World, args: tuple[str, ...], message: str
) -> None:
    set_tag_dimensions(world.tenant, ["customer_tier"])
    with pytest.raises(CommandError, match=message):
        call_command("set_budget", "acme", "--amount", "5", *args, stdout=StringIO())
    assert not Budget.objects.for_tenant(world.tenant).exists()
