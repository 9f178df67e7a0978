"""Merges run without JIT compilation: planned from the estimates of a large event table,
PostgreSQL would otherwise compile each merge's ~200 expressions first (12-26 s per merge at
30M stored events, against under a second of work)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ingest.services import ingest_events
from rollups import sql
from rollups.services import roll_up_pending
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
