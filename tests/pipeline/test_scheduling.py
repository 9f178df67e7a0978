"""Rollup runs: one pass over what is pending when they start, and always a next run."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ingest.models import PendingBatch
from ingest.services import ingest_events
from pipeline import scheduling
from rollups import services
from tests.conftest import World, event
from tests.rollups.helpers import daily_total


@pytest.mark.django_db
def test_it_takes_only_the_batches_pending_when_the_run_began(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_events(world.ingest.key, [event(1), event(2)])
    one_pass = services._roll_up

    def pass_while_more_arrive(
        tenant_id: int, max_batches: int, skip: set[int], newest: int | None = None
    ) -> services.RunResult:
        folded = one_pass(tenant_id, max_batches, skip, newest)
        ingest_events(world.ingest.key, [event(f"late-{folded.batches}")])
        return folded

    monkeypatch.setattr(services, "_roll_up", pass_while_more_arrive)
    assert services.roll_up_all_pending(world.tenant.pk) == 2
    # The batch that arrived during the run waits for the run it scheduled itself.
    assert PendingBatch.objects.for_tenant(world.tenant).count() == 1
    assert daily_total(world.tenant)[0] == 2


@pytest.mark.django_db
def test_it_ends_a_run_of_full_passes_with_the_batches_pending_when_it_began(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under ingest faster than the merges every pass is full: a run that also took the
    # newcomers never ended, until the worker's hard time limit killed it mid-merge.
    monkeypatch.setattr(services, "MAX_BATCHES_PER_RUN", 2)
    for n in range(5):
        ingest_events(world.ingest.key, [event(f"before-{n}")])
    one_pass = services._roll_up
    passes: list[int] = []

    def pass_while_more_arrive(
        tenant_id: int, max_batches: int, skip: set[int], newest: int | None = None
    ) -> services.RunResult:
        passes.append(len(passes))
        ingest_events(world.ingest.key, [event(f"during-{len(passes)}")])
        return one_pass(tenant_id, max_batches, skip, newest)

    monkeypatch.setattr(services, "_roll_up", pass_while_more_arrive)
    assert services.roll_up_all_pending(world.tenant.pk) == 5  # 2 + 2 + 1 stored before
    assert len(passes) == 3
    assert PendingBatch.objects.for_tenant(world.tenant).count() == 3  # the next run's


@pytest.mark.django_db
def test_it_keeps_going_while_a_pass_was_full(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "MAX_BATCHES_PER_RUN", 2)
    for n in range(5):
        ingest_events(world.ingest.key, [event(n)])
    ingest_events(world.ingest.key, [event(9, input_tokens=-5)])  # all rejected
    assert services.roll_up_all_pending(world.tenant.pk) == 5
    assert not PendingBatch.objects.for_tenant(world.tenant).exists()


class _Cache:
    def __init__(self, flag: Any = None) -> None:
        self.flag = flag

    def add(self, key: str, value: Any, timeout: float) -> bool:
        if self.flag is not None:
            return False
        self.flag = value
        return True

    def get(self, key: str) -> Any:
        return self.flag


@pytest.fixture
def scheduled(monkeypatch: pytest.MonkeyPatch, settings: Any) -> list[float]:
    settings.ROLLUP_DEBOUNCE_SECONDS = 6
    monkeypatch.setattr(scheduling, "_recently", {})
    runs: list[float] = []
    from pipeline.tasks import roll_up_tenant

    monkeypatch.setattr(
        roll_up_tenant, "apply_async", lambda args, countdown: runs.append(countdown)
    )
    return runs


def test_it_skips_asking_for_half_the_debounce_after_scheduling_a_run(
    scheduled: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduling, "cache", _Cache())
    scheduling.schedule_rollup(7)
    assert scheduled == [6]
    assert 2.9 < scheduling._recently[7] - time.monotonic() <= 3


def test_it_asks_again_once_the_run_another_process_scheduled_may_have_started(
    scheduled: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process's run starts in 2 s: events after that need a run of their own,
    # so this process must not skip asking for the next 3 s.
    monkeypatch.setattr(scheduling, "cache", _Cache(flag=time.time() + 2))
    scheduling.schedule_rollup(7)
    assert scheduled == []
    assert 1.9 < scheduling._recently[7] - time.monotonic() <= 2
    # An overdue run (or a flag from before this change, the value 1): ask again within a
    # second, not on every request.
    monkeypatch.setattr(scheduling, "cache", _Cache(flag=1))
    scheduling._recently.clear()
    scheduling.schedule_rollup(7)
    assert 0.9 < scheduling._recently[7] - time.monotonic() <= 1
