"""Which database a query goes to (core/replica.py), without a replica server: the routing
rules a page, an API call and a service depend on. The live behaviour is in test_replica.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client, RequestFactory
from django.utils import timezone

from core import replica
from prices.models import RepriceRun
from rollups.models import DailyRollup
from tests.conftest import World, login

USABLE = replica.ReplicaState(configured=True, reachable=True, lag_seconds=0.5)
DOWN = replica.ReplicaState(configured=True)

pytestmark = pytest.mark.django_db(transaction=True)  # outside any atomic block, as a request


@pytest.fixture
def replica_state(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(replica, "configured", lambda: True)
    monkeypatch.setattr(replica, "state", lambda: USABLE)
    monkeypatch.setattr(replica, "_answers", lambda: True)
    return monkeypatch


def test_it_sends_reads_to_the_replica_only_inside_reads(
    world: World, replica_state: pytest.MonkeyPatch
) -> None:
    rows = DailyRollup.objects.for_tenant(world.tenant)
    assert rows.db == "default"
    with replica.reads() as alias:
        assert alias == "replica"
        assert DailyRollup.objects.for_tenant(world.tenant).db == "replica"
        # Scoped writes and reads that must see the primary's rows go to the primary.
        assert DailyRollup.objects.for_tenant(world.tenant).select_for_update().db == "default"
        with transaction.atomic():
            assert DailyRollup.objects.for_tenant(world.tenant).db == "default"
    assert DailyRollup.objects.for_tenant(world.tenant).db == "default"


def test_it_reads_the_primary_when_the_replica_is_down_or_lags_too_far(
    world: World, replica_state: pytest.MonkeyPatch, settings: object
) -> None:
    replica_state.setattr(replica, "state", lambda: DOWN)
    with replica.reads() as alias:
        assert alias == "default"
        assert DailyRollup.objects.for_tenant(world.tenant).db == "default"
    lagging = replica.ReplicaState(configured=True, reachable=True, lag_seconds=31.0)
    replica_state.setattr(replica, "state", lambda: lagging)
    assert replica.reading() == "default"  # REPLICA_MAX_LAG_SECONDS is 30


def test_it_keeps_a_browser_that_posted_on_the_primary(
    world: World, replica_state: pytest.MonkeyPatch
) -> None:
    owner = login("owner")
    saved = owner.post("/settings/", {"action": "create_key", "name": "k", "scope": "read"})
    assert saved.status_code in (200, 302)
    assert saved.cookies["costboard-fresh"]["max-age"] == 30
    assert "costboard-fresh" not in owner.get("/").cookies  # a page view sets nothing


def test_it_sets_no_cookie_without_a_replica(world: World) -> None:
    owner = login("owner")
    saved = owner.post("/settings/", {"action": "create_key", "name": "k", "scope": "read"})
    assert saved.status_code in (200, 302)
    assert "costboard-fresh" not in saved.cookies


def test_it_reads_a_streamed_export_from_the_replica_while_it_streams(
    world: World, replica_state: pytest.MonkeyPatch
) -> None:
    # A CSV body is iterated after the view returned: its rows must still come from the replica.
    def rows() -> Iterator[bytes]:
        yield DailyRollup.objects.for_tenant(world.tenant).db.encode()

    request = RequestFactory().get("/invoices/month/2026-11/csv/")
    assert b"".join(replica.streamed(request, rows())) == b"replica"
    request.COOKIES["costboard-fresh"] = "1"  # this browser has just posted
    assert b"".join(replica.streamed(request, rows())) == b"default"
    assert DailyRollup.objects.for_tenant(world.tenant).db == "default"


@pytest.fixture
def picked(replica_state: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(model, alias) of every read the router routes, run on the primary all the same (there
    is no replica server here): which pages read their figures from the replica."""
    seen: list[tuple[str, str]] = []
    choose = replica.ReplicaRouter.db_for_read

    def spy(self: replica.ReplicaRouter, model: Any, **hints: Any) -> str:
        alias = choose(self, model, **hints)
        seen.append((model._meta.label, alias))
        return "default"

    replica_state.setattr(replica.ReplicaRouter, "db_for_read", spy)
    return seen


FIGURE_PAGES = [
    ("/prices/", "member", "rollups.DailySlice"),
    ("/whatif/", "member", "rollups.DailySlice"),
    ("/budgets/", "member", "budgets.Budget"),
    ("/anomalies/", "member", "anomalies.Anomaly"),
    ("/settings/audit/", "owner", "audit.AuditEntry"),
    ("/settings/audit.csv", "owner", "audit.AuditEntry"),
]


def _read(response: Any) -> bytes:
    # A CSV streams: its rows are read only as its body is.
    if response.streaming:
        return b"".join(response.streaming_content)
    return bytes(response.content)


@pytest.mark.parametrize(("url", "username", "model"), FIGURE_PAGES)
def test_it_reads_the_figures_of_later_pages_from_the_replica(
    world: World, picked: list[tuple[str, str]], url: str, username: str, model: str
) -> None:
    client = login(username)
    picked.clear()  # signing in reads the primary
    response = client.get(url)
    assert response.status_code == 200
    _read(response)
    assert (model, "replica") in picked, sorted(set(picked))
    # A browser that has just posted reads what it saved: the primary, everywhere.
    client.cookies["costboard-fresh"] = "1"
    picked.clear()
    response = client.get(url)
    _read(response)
    assert picked and {alias for _, alias in picked} == {"default"}


def test_it_answers_the_whatif_api_from_the_replica(
    world: World, picked: list[tuple[str, str]]
) -> None:
    response = Client().get("/api/v1/whatif", HTTP_AUTHORIZATION=f"Bearer {world.read.token}")
    assert response.status_code == 200, response.content
    assert ("rollups.DailySlice", "replica") in picked, sorted(set(picked))


def test_it_keeps_re_price_progress_on_the_primary(
    world: World, picked: list[tuple[str, str]]
) -> None:
    # A preview's and a run's status must be what the worker just wrote.
    run = RepriceRun.objects.for_tenant(world.tenant).create(
        tenant=world.tenant, since=timezone.now().date(), requested_at=timezone.now(),
        pricing_version=0,
    )  # fmt: skip
    client = login("finance")
    picked.clear()
    assert client.get(f"/prices/reprice/{run.pk}/").status_code == 200
    assert picked and {alias for _, alias in picked} == {"default"}
