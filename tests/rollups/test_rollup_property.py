"""Property: whatever arrives, in any order, however often rerun or recomputed, the rollups
equal the raw sums of the events whose batch was merged, after every step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from rollups.models import DIMENSIONS, ROLLUP_MODELS, ConsumerWindow, HourlyRollup
from rollups.services import MEASURES, recompute, roll_up_pending
from rollups.windows import standard_windows
from tenants.scoping import TenantOwned
from tests.conftest import World
from tests.rollups.helpers import assert_rollups_match_raw, settled_events

# Half past the previous hour: never in the future, whatever minute the test runs at.
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)

events = st.fixed_dictionaries(
    {
        "event_id": st.integers(0, 60).map(lambda n: f"e{n}"),  # small range: many duplicates
        "timestamp": st.integers(0, 72).map(lambda h: (NOW - timedelta(hours=h)).isoformat()),
        "provider": st.sampled_from(["openai", "anthropic", "inhouse"]),
        "model": st.sampled_from(
            ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "claude-3-5-haiku-latest", "x-1"]
        ),
        "input_tokens": st.integers(0, 300_000),
        "output_tokens": st.integers(0, 50_000),
        "feature": st.sampled_from(["", "chat", "rag"]),
        "user_id": st.sampled_from(["", "u1", "u2"]),
        "environment": st.sampled_from(["production", "staging"]),
        "endpoint": st.sampled_from(["", "/v1/chat", "/v1/search"]),
        # Every status class, and codes outside 100-599 (0: a call that got no answer).
        "status_code": st.sampled_from([0, 101, 200, 201, 302, 404, 429, 500, 503, 999]),
        "latency_ms": st.one_of(st.none(), st.integers(0, 90_000)),
        "cost_usd": st.one_of(st.none(), st.decimals(0, 5, places=9).map(str)),
    }
)
# Each step: ingest a batch into tenant 0 or 1, roll up some pending batches, or recompute.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.integers(0, 1), st.lists(events, min_size=1, max_size=8)),
        st.tuples(st.just("rollup"), st.integers(0, 1), st.integers(1, 3)),
        st.tuples(st.just("recompute"), st.integers(0, 1), st.integers(0, 4)),
    ),
    max_size=14,
)


def _apply(world: World, step: tuple[Any, ...]) -> None:
    kind, which, arg = step
    tenant = (world.tenant, world.other_tenant)[which]
    key = (world.ingest, world.other_ingest)[which].key
    if kind == "ingest":
        ingest_events(key, arg)
    elif kind == "rollup":
        roll_up_pending(tenant.pk, max_batches=arg)
    else:
        # Batches still pending are left to their own merge, not counted here as well.
        recompute(tenant, (NOW - timedelta(days=arg)).date())
    assert_rollups_match_raw(tenant, settled_events(tenant))


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_it_keeps_rollups_equal_to_raw_events(world: World, steps: list[tuple[Any, ...]]) -> None:
    for tenant in (world.tenant, world.other_tenant):
        _reset(tenant)
    for step in steps:
        _apply(world, step)
    for tenant in (world.tenant, world.other_tenant):
        while PendingBatch.objects.for_tenant(tenant).exists():
            roll_up_pending(tenant.pk, max_batches=2)
        assert not PendingBatch.objects.for_tenant(tenant).exists()
        assert_rollups_match_raw(tenant)
        if UsageEvent.objects.for_tenant(tenant).exists():
            assert set(windows_of(tenant)) == standard_windows(datetime.now(UTC))


def _reset(tenant: Any) -> None:
    # Hypothesis reuses the function-scoped fixture across examples: start each one empty.
    owned: tuple[type[TenantOwned], ...] = (UsageEvent, PendingBatch, *ROLLUP_MODELS)
    for model in owned:
        model.objects.for_tenant(tenant).delete()


def windows_of(tenant: Any) -> list[tuple[Any, Any]]:
    return list(ConsumerWindow.objects.for_tenant(tenant).values_list("first_day", "last_day"))


def test_the_merge_sums_every_measure_column() -> None:
    # The property's expected figures cover MEASURES: every summed column must be one.
    columns = [f.name for f in HourlyRollup._meta.concrete_fields]
    assert [c for c in columns if c not in ("id", "tenant", "hour", *DIMENSIONS)] == [*MEASURES]
