"""The usage API by endpoint, status class, canonical model and model family: what a
platform team asks ("which endpoint, which model family, how much of it is retries")."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from ingest.models import UsageEvent
from ingest.services import ingest_events
from pricing.families import ModelNames, canonical_model
from pricing.services import FamilyRuleError, set_family_rule
from rollups.services import roll_up_all_pending
from tests.conftest import World, event, login

DAY = datetime(2026, 10, 1, 9, 15, tzinfo=UTC).isoformat()


def _seed(world: World) -> None:
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=DAY, endpoint="/chat", status_code=200, cost_usd="1"),
            event(2, timestamp=DAY, endpoint="/chat", status_code=429, cost_usd="0.5"),
            event(3, timestamp=DAY, endpoint="/chat", model="gpt-4o-2024-08-06", cost_usd="2"),
            event(4, timestamp=DAY, endpoint="/search", status_code=503, cost_usd="4"),
            event(5, timestamp=DAY, endpoint="/search", model="gpt-4o-mini", cost_usd="8"),
            event(
                6,
                timestamp=DAY,
                provider="anthropic",
                model="claude-3-5-sonnet-20241022",
                status_code=404,
                cost_usd="16",
            ),  # a client error
            event(7, timestamp=DAY, provider="inhouse", model="ours-1", cost_usd="32"),
        ],
    )
    ingest_events(
        world.other_ingest.key,
        [event(9, timestamp=DAY, endpoint="/secret", model="ours-1", provider="inhouse")],
    )
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _rows(client: Client, query: str, **auth: Any) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/usage?from=2026-10-01&to=2026-10-02&{query}", **auth)
    assert response.status_code == 200, response.content
    return response.json()["rows"]


def _calls(rows: list[dict[str, Any]], *keys: str) -> dict[Any, int]:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r["requests"] for r in rows}


def _raw_cost(world: World, **fields: Any) -> Decimal:
    events = UsageEvent.objects.for_tenant(world.tenant).filter(**fields)
    return sum((e.cost_usd for e in events), Decimal(0))


def test_it_groups_by_endpoint_and_status_class(world: World) -> None:
    _seed(world)
    rows = _rows(Client(), "group_by=endpoint,status", **world.read.auth)
    assert _calls(rows, "endpoint", "status") == {
        ("", "2xx"): 1,
        ("", "4xx"): 1,
        ("/chat", "2xx"): 2,
        ("/chat", "429"): 1,
        ("/search", "2xx"): 1,
        ("/search", "5xx"): 1,
    }
    chat = [Decimal(r["cost_usd"]) for r in rows if r["endpoint"] == "/chat"]
    assert sum(chat, Decimal(0)) == _raw_cost(world, endpoint="/chat")
    # Rate limiting and server errors show apart: "how much of it is retries".
    by_status = _rows(Client(), "group_by=status", **world.read.auth)
    assert _calls(by_status, "status") == {"2xx": 4, "429": 1, "4xx": 1, "5xx": 1}


def test_it_folds_dated_model_names_into_the_catalogs_model_and_family(world: World) -> None:
    _seed(world)
    client = Client()
    models = _rows(client, "group_by=model", **world.read.auth)
    assert _calls(models, "model") == {
        "gpt-4o": 4,  # gpt-4o and gpt-4o-2024-08-06
        "gpt-4o-mini": 1,
        "claude-3-5-sonnet": 1,
        "ours-1": 1,  # unknown to the catalog: keeps its name
    }
    gpt_4o = next(Decimal(r["cost_usd"]) for r in models if r["model"] == "gpt-4o")
    assert gpt_4o == _raw_cost(world, model__in=["gpt-4o", "gpt-4o-2024-08-06"])
    names = _calls(_rows(client, "group_by=model_name", **world.read.auth), "model_name")
    assert (names["gpt-4o-2024-08-06"], names["gpt-4o"]) == (1, 3)
    families = _rows(client, "group_by=model_family,endpoint", **world.read.auth)
    assert _calls(families, "model_family", "endpoint") == {
        ("GPT-4o", "/chat"): 3,
        ("GPT-4o", "/search"): 1,
        ("GPT-4o mini", "/search"): 1,
        ("Claude 3.5", ""): 1,
        ("ours-1", ""): 1,  # no rule matches: its own family
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("endpoint=/chat", 3),
        ("status=429", 1),
        ("status=5xx&endpoint=/search", 1),
        ("model=gpt-4o", 4),
        ("model_name=gpt-4o", 3),
        ("model_family=GPT-4o+mini", 1),
        ("model_family=Claude+3.5&status=4xx", 1),
        ("model_family=Claude+3.5&status=2xx", 0),
        ("provider=inhouse", 1),
        ("team=search&feature=&environment=production", 7),
        ("environment=staging", 0),
        ("model_family=Gemini+2.0", 0),
        ("endpoint=/secret", 0),  # another tenant's endpoint
    ],
)
def test_it_filters_by_every_dimension(world: World, query: str, expected: int) -> None:
    _seed(world)
    rows = _rows(Client(), query, **world.read.auth)
    assert sum(r["requests"] for r in rows) == expected


def test_it_applies_the_tenants_own_family_rules_over_the_built_in_ones(world: World) -> None:
    _seed(world)
    set_family_rule(world.tenant, "gpt-4o", "OpenAI 4o (all)")  # a prefix: mini as well
    set_family_rule(world.tenant, "ours-*", "In-house")
    set_family_rule(world.other_tenant, "claude*", "Globex Claude")
    rows = _rows(Client(), "group_by=model_family", **world.read.auth)
    assert _calls(rows, "model_family") == {
        "OpenAI 4o (all)": 5,
        "Claude 3.5": 1,  # the other tenant's rule is not ours
        "In-house": 1,
    }
    in_house = _rows(Client(), "model_family=In-house&group_by=model", **world.read.auth)
    assert _calls(in_house, "model") == {"ours-1": 1}
    # The other tenant sees its own rules and its own values only.
    theirs = _rows(Client(), "group_by=model_family,endpoint", **world.other_read.auth)
    assert [(r["model_family"], r["endpoint"]) for r in theirs] == [("ours-1", "/secret")]


def test_it_prefers_the_longest_of_the_tenants_patterns(world: World) -> None:
    set_family_rule(world.tenant, "gpt-4o", "Four-oh")
    set_family_rule(world.tenant, "gpt-4o-mini", "Mini")
    names = ModelNames.of(world.tenant)
    assert names.family("openai", "gpt-4o-mini-2024-07-18") == "Mini"
    assert names.family("openai", "gpt-4o-2024-08-06") == "Four-oh"
    assert names.family("anthropic", "claude-sonnet-4-20250514") == "Claude 4"
    assert canonical_model("OpenAI", "GPT-4o-2024-08-06") == "gpt-4o"
    with pytest.raises(FamilyRuleError, match="match"):
        set_family_rule(world.tenant, "gpt 4", "x")
    with pytest.raises(FamilyRuleError, match="family"):
        set_family_rule(world.tenant, "gpt-5", " ")


def test_it_sets_lists_and_deletes_rules_from_the_command_line(world: World) -> None:
    out = StringIO()
    call_command("model_family", "acme", "--set", "ours-", "In-house", stdout=out)
    assert "ours- -> In-house" in out.getvalue()
    assert ModelNames.of(world.tenant).family("inhouse", "ours-2") == "In-house"
    assert ModelNames.of(world.other_tenant).family("inhouse", "ours-2") == "ours-2"
    call_command("model_family", "acme", "--delete", "ours-", stdout=StringIO())
    assert ModelNames.of(world.tenant).family("inhouse", "ours-2") == "ours-2"
    with pytest.raises(CommandError, match="no rule"):
        call_command("model_family", "acme", "--delete", "ours-", stdout=StringIO())
    with pytest.raises(CommandError, match="family"):
        call_command("model_family", "acme", "--set", "x", "", stdout=StringIO())


def test_it_serves_members_their_own_tenant_by_endpoint(world: World) -> None:
    _seed(world)
    mine = _rows(login("member"), "group_by=endpoint")
    assert {r["endpoint"] for r in mine} == {"", "/chat", "/search"}
    theirs = _rows(login("outsider"), "group_by=endpoint")
    assert [r["endpoint"] for r in theirs] == ["/secret"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=2XX", "status"),
        ("status=200", "status"),
        ("team=nobody", "team"),
        ("group_by=user&endpoint=/chat", "endpoint"),
        ("group_by=user&model_family=GPT-4o", "model_family"),
        ("group_by=user,status", "group_by"),
        ("group_by=tag", "group_by"),
    ],
)
def test_it_names_the_bad_dimension_parameter(world: World, query: str, field: str) -> None:
    response = Client().get(f"/api/v1/usage?{query}", **world.read.auth)
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_it_refuses_another_tenants_team_as_it_refuses_a_missing_one(world: World) -> None:
    response = Client().get("/api/v1/usage?team=search", **world.other_read.auth)
    assert response.status_code == 200  # globex has a team "search" of its own
    _seed(world)
    rows = _rows(Client(), "team=search&group_by=endpoint", **world.other_read.auth)
    assert [r["endpoint"] for r in rows] == ["/secret"]
