"""Seed rollups through the real ingest and rollup code, scrape /metrics, parse the answer."""

from __future__ import annotations

import shutil
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from core.teams import UNALLOCATED
from ingest.models import UsageEvent
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from tenants.models import Scope, Team
from tenants.services import create_api_key
from tests.conftest import World, event

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]

requires_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (apt-get install prometheus; .ci/run installs it)",
)


def seed(world: World) -> None:
    """acme: search team (gpt-4o x3, gpt-4o-mini), an unallocated key (claude); globex: gpt-4o.

    Also one duplicate and one rejected event, all rolled up.
    """
    unallocated, _ = create_api_key(world.tenant, team=None, scope=Scope.INGEST)
    ingest_events(
        world.ingest.key,
        [
            event(1, latency_ms=40),
            event(2, latency_ms=300, status_code=500),
            event(3, model="gpt-4o-mini", cache_read_tokens=200, latency_ms=7000),
            event(4, feature="chat"),  # no latency: not in the histogram
            {"event_id": "bad", "model": "gpt-4o"},  # no provider: rejected
        ],
    )
    ingest_events(world.ingest.key, [event(1, latency_ms=40)])  # a duplicate
    ingest_events(
        unallocated,
        [event(5, provider="anthropic", model="claude-3-5-haiku-latest", cache_write_tokens=100)],
    )
    ingest_events(world.other_ingest.key, [event(9, latency_ms=2500)])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def raw_costs() -> dict[tuple[str, str, str, str], Decimal]:
    """What the stored events cost per (tenant, team, provider, model): the expected answer."""
    teams = {t.pk: t.slug for t in Team.unscoped_all_tenants.all()}  # every tenant: a test
    out: dict[tuple[str, str, str, str], Decimal] = defaultdict(Decimal)
    for e in UsageEvent.unscoped_all_tenants.select_related("tenant"):  # every tenant: a test
        team = teams.get(e.team_id, UNALLOCATED) if e.team_id else UNALLOCATED
        out[(e.tenant.slug, team, e.provider, e.model)] += e.cost_usd
    return dict(out)


def scrape(client: Client | None = None, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = (client or Client()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def parse(body: str) -> Series:
    out: Series = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def pick(series: Series, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return {k: v for (n, k), v in series.items() if n == name and want <= k}


def value(series: Series, name: str, **labels: str) -> float:
    return series[(name, frozenset(labels.items()))]


def costboard_lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("costboard_")]


def assert_money(actual: float, expected: Decimal | Any) -> None:
    # PostgreSQL sums NUMERIC exactly: the float is the exact sum's nearest double.
    assert actual == float(expected)
