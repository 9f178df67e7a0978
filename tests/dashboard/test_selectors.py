"""Top lists: spend, share and change against the previous period, sliced or filtered alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.http import QueryDict

from dashboard import selectors, stacks
from dashboard.filters import parse_filters
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from tenants.labels import TeamLabels
from tenants.services import create_team
from tests.conftest import World, event

NOW = datetime.now(UTC)
CALL = Decimal("0.0075")  # 1,000 input and 500 output tokens at gpt-4o
MINI = Decimal("0.00045")  # the same at gpt-4o-mini


def _seed(world: World) -> None:
    create_team(world.tenant, "support", "Support", "CC-2")
    yesterday, last_week = NOW - timedelta(days=1), NOW - timedelta(days=9)
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=yesterday.isoformat(), feature="chat"),
            event(2, timestamp=yesterday.isoformat(), feature="chat", model="gpt-4o-mini"),
            event(3, timestamp=last_week.isoformat(), feature="chat"),
            event(4, timestamp=last_week.isoformat(), feature="rag"),
            event(5, timestamp=yesterday.isoformat(), feature="rag", team="support"),
        ],
    )
    ingest_events(world.other_ingest.key, [event(9, timestamp=yesterday.isoformat())])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _top(world: World, query: str, dim: str) -> list[tuple[str, Decimal, float, float | None]]:
    f = parse_filters(QueryDict(query))
    rows = selectors.top(world.tenant, f, TeamLabels.of(world.tenant), dim)
    return [(r.label, r.cost, round(r.share, 3), r.change) for r in rows]


@pytest.mark.django_db
def test_it_ranks_teams_with_share_and_change_against_the_week_before(world: World) -> None:
    _seed(world)
    assert _top(world, "range=7d", "team") == [
        ("search", CALL + MINI, round(float((CALL + MINI) / (2 * CALL + MINI)), 3),
         float((CALL + MINI) / (2 * CALL) - 1)),  # the week before: two gpt-4o calls
        ("support", CALL, round(float(CALL / (2 * CALL + MINI)), 3), None),  # nothing before
    ]  # fmt: skip


@pytest.mark.django_db
def test_it_gives_the_same_figures_from_slices_and_from_filtered_rollups(world: World) -> None:
    _seed(world)
    # No filter reads the slices; a feature filter reads the full rollups.
    unfiltered = {r[0]: r for r in _top(world, "range=7d", "feature")}
    for feature in ("chat", "rag"):
        label, cost, _, change = unfiltered[feature]
        assert _top(world, f"range=7d&feature={feature}", "feature") == [(label, cost, 1.0, change)]


@pytest.mark.django_db
def test_it_ranks_models_within_an_environment(world: World) -> None:
    _seed(world)
    assert [r[0] for r in _top(world, "range=7d&environment=production", "model")] == [
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
    ]
    assert _top(world, "range=7d&environment=staging", "model") == []


@pytest.mark.django_db
def test_it_sums_every_environment_when_none_is_chosen(world: World) -> None:
    yesterday = (NOW - timedelta(days=1)).isoformat()
    staging = [event(n, timestamp=yesterday, feature="chat", environment="staging") for n in (7, 8)]
    ingest_events(world.ingest.key, [event(6, timestamp=yesterday, feature="chat"), *staging])
    roll_up_all_pending(world.tenant.pk)
    assert _top(world, "range=7d", "feature") == [("chat", 3 * CALL, 1.0, None)]
    assert _top(world, "range=7d&environment=staging", "feature") == [("chat", 2 * CALL, 1.0, None)]
    assert _top(world, "range=7d&environment=production", "feature") == [("chat", CALL, 1.0, None)]


def _spend(world: World, query: str) -> Decimal:
    f = parse_filters(QueryDict(query))
    totals, _ = selectors.totals_now_and_before(world.tenant, f, TeamLabels.of(world.tenant))
    return totals.cost_usd


@pytest.mark.django_db
def test_it_totals_one_team_feature_or_model_as_the_raw_events_do(world: World) -> None:
    _seed(world)  # one filter reads that dimension's slice; two read the full rollups
    assert _spend(world, "range=7d&team=support") == CALL
    assert _spend(world, "range=7d&team=search") == CALL + MINI
    assert _spend(world, "range=7d&feature=chat") == CALL + MINI
    assert _spend(world, "range=7d&model=gpt-4o-mini") == MINI
    assert _spend(world, "range=7d&team=search&feature=chat") == CALL + MINI
    assert _spend(world, "range=7d&team=support&environment=staging") == 0
    assert _spend(world, "range=30d&feature=rag") == 2 * CALL


@pytest.mark.django_db
def test_it_stacks_the_top_features_and_folds_the_rest_into_other(world: World) -> None:
    yesterday = (NOW - timedelta(days=1)).isoformat()
    # Feature f<n> makes n + 1 calls: f9 spends most, f0 and f1 least.
    calls = [(f"f{n}", i) for n in range(10) for i in range(n + 1)]
    batch = [event(f"{name}-{i}", timestamp=yesterday, feature=name) for name, i in calls]
    ingest_events(world.ingest.key, batch)
    roll_up_all_pending(world.tenant.pk)
    f = parse_filters(QueryDict("range=7d&stack=feature"))
    teams = TeamLabels.of(world.tenant)
    _, series = stacks.stacked_spend(world.tenant, f, teams, "feature")
    assert set(series) == {f"f{n}" for n in range(2, 10)} | {"other"}
    day = (NOW - timedelta(days=1)).date()
    assert series["f9"] == {day: 10 * CALL}
    assert series["other"] == {day: 3 * CALL}  # f0 (1 call) and f1 (2 calls)


@pytest.mark.django_db
def test_it_totals_the_period_and_the_one_before_apart(world: World) -> None:
    _seed(world)
    f = parse_filters(QueryDict("range=7d"))
    now, before = selectors.totals_now_and_before(world.tenant, f, TeamLabels.of(world.tenant))
    assert (now.requests, now.cost_usd) == (3, 2 * CALL + MINI)
    assert (before.requests, before.cost_usd) == (2, 2 * CALL)
