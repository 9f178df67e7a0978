"""How a rollup run behaves under load: merges run without JIT compilation (planned from the
estimates of a large event table, PostgreSQL would otherwise compile each merge's ~200
expressions first: 12-26 s per merge at 30M events), and a run ends with the batches pending
when it started, however fast new ones arrive."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ingest.models import PendingBatch
from ingest.services import ingest_events
from rollups import services, sql
from rollups.services import roll_up_all_pending, roll_up_pending
from rollups.tags import set_tag_dimensions
from tests.conftest import World, event


def _setting_before(queries: list[str], statement: str) -> str:
    """The `jit` setting in force when `statement` ran, as the queries before it left it."""
    at = queries.index(statement)
    sets = [q for q in queries[:at] if q.startswith("SET LOCAL jit") or q.startswith("SET jit")]
    return sets[-1].rsplit(" ", 1)[-1] if sets else "on"


@pytest.mark.django_db
def test_it_merges_the_rollups_and_tag_rollups_with_jit_off(world: World) -> None:
    set_tag_dimensions(world.tenant, ["tier"])
    with connection.cursor() as cursor:  # as a large table's estimates would have it
        cursor.execute("SET jit = on")
        cursor.execute("SET jit_above_cost = 0")
    ingest_events(world.ingest.key, [event(1, tags={"tier": "pro"}), event(2)])
    with CaptureQueriesContext(connection) as captured:
        assert roll_up_pending(world.tenant.pk) == 2
    queries = [q["sql"] for q in captured.captured_queries]
    merges = [q for q in queries if q.startswith("WITH ev AS MATERIALIZED")]
    assert len(merges) == 2  # the main merge and the tag merge
    for merge in merges:
        assert _setting_before(queries, merge) == "off"
    assert queries.count(sql.NO_JIT) == 2


@pytest.mark.django_db
def test_it_ends_a_run_with_the_batches_pending_when_it_started(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "MAX_BATCHES_PER_RUN", 2)
    for n in range(5):
        ingest_events(world.ingest.key, [event(f"before-{n}")])
    merge = services._roll_up
    arrived: list[int] = []

    def merge_while_calls_arrive(*args: object) -> services.RunResult:
        # A client stores another batch while each transaction of the run merges.
        arrived.append(len(arrived))
        ingest_events(world.ingest.key, [event(f"during-{len(arrived)}")])
        return merge(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "_roll_up", merge_while_calls_arrive)
    assert roll_up_all_pending(world.tenant.pk) == 5  # 2 + 2 + 1 of those stored before
    assert len(arrived) == 3
    assert PendingBatch.objects.for_tenant(world.tenant).count() == 3  # the next run's
