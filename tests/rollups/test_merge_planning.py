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


def _upserted_tables(merge: str) -> set[str]:
    """The tables a merge adds to in place (`INSERT ... ON CONFLICT ... DO UPDATE`)."""
    parts = merge.split("INSERT INTO ")[1:]
    return {part.split(" ", 1)[0] for part in parts if "DO UPDATE" in part}


@pytest.mark.django_db
def test_it_leaves_room_on_each_page_for_the_merges_updates(world: World) -> None:
    # A full page sends every updated row to another page and into every index; 30% free
    # keeps updates on their page (HOT), which made the tag merge ~35% cheaper per event.
    set_tag_dimensions(world.tenant, ["tier"])
    ingest_events(world.ingest.key, [event(1, tags={"tier": "pro"}), event(2)])
    with CaptureQueriesContext(connection) as captured:
        roll_up_pending(world.tenant.pk)
    merges = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("WITH ev AS")]
    tables = set().union(*(_upserted_tables(merge) for merge in merges))
    assert len(tables) == 11  # seven rollups and slices, four tag rollups and slices
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [list(tables)]
        )
        options = dict(cursor.fetchall())
    assert options == {table: ["fillfactor=70"] for table in tables}
