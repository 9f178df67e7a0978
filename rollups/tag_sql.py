"""The tag rollups' merge: one statement next to the main merge, over the same events.

Only the tenant's chosen keys are read out of each event's `tags` (`tags ->> key`, one row per
event and key), so a tenant with no tag dimensions pays nothing: the statement is not run.
Per key and UTC day the first `TAG_VALUES_PER_DAY` distinct values are admitted (`TagValue`,
first come, under the tenant's rollup lock that every merge holds); the rest are summed under
"(other)", so each key's rows still add up to every event exactly. The keys and measures are
the main merge's (`rollups.sql.DIMS`, `DIM_SQL`, `_measures`), so a dimension added there is
added here too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.db import connection

from rollups import sql
from rollups.models import (
    NO_TAG_VALUE,
    OTHER_TAG_VALUE,
    TAG_SLICES,
    TAG_VALUE_LENGTH,
    TagDailyRollup,
    TagDailySlice,
    TagDimension,
    TagHourlyRollup,
    TagHourlySlice,
    TagValue,
)

HOURLY = TagHourlyRollup._meta.db_table
DAILY = TagDailyRollup._meta.db_table
HOURLY_SLICES = TagHourlySlice._meta.db_table
DAILY_SLICES = TagDailySlice._meta.db_table
VALUES = TagValue._meta.db_table
TAG = ("tag_key", "tag_value")
TAG_COLUMNS = f"{sql.EVENT_COLUMNS}, tags"
DAY = "(hour AT TIME ZONE 'UTC')::date"


# The dimension columns of the grouped events (`sql.H_DIMS`'s names).
H_NAMES = tuple(name for name, _ in sql.H_DIMS)
# `g`: the events grouped per hour, chosen key (`%(keys)s`), the key's value ('' when an
# event has none) and the main rollups' dimensions, measures summed; the events are read
# once, every later step works on these groups. Then the values seen, those admitted before,
# and the new ones admitted while the day has room (in value order within one merge).
ADMISSION = (
    "seen AS (SELECT DISTINCT day, tag_key, raw_value FROM g "  # noqa: S608 - constants
    f"WHERE raw_value <> '{NO_TAG_VALUE}'), "
    f"old AS (SELECT v.day, v.tag_key, v.tag_value FROM {VALUES} v "
    "WHERE v.tenant_id = %(tenant)s AND v.tag_key = ANY(%(keys)s::text[]) "
    "AND v.day IN (SELECT DISTINCT day FROM seen)), "
    "used AS (SELECT day, tag_key, COUNT(*) AS n FROM old GROUP BY 1, 2), "
    "fresh AS (SELECT s.day, s.tag_key, s.raw_value, ROW_NUMBER() OVER "
    "(PARTITION BY s.day, s.tag_key ORDER BY s.raw_value) AS rank FROM seen s "
    "WHERE NOT EXISTS (SELECT FROM old o WHERE o.day = s.day AND o.tag_key = s.tag_key "
    "AND o.tag_value = s.raw_value)), "
    "admit AS (SELECT f.day, f.tag_key, f.raw_value FROM fresh f LEFT JOIN used u "
    "ON u.day = f.day AND u.tag_key = f.tag_key WHERE f.rank + COALESCE(u.n, 0) <= %(cap)s), "
    f"ins AS (INSERT INTO {VALUES} (tenant_id, day, tag_key, tag_value) "
    "SELECT %(tenant)s, day, tag_key, raw_value FROM admit ORDER BY 1, 2, 3, 4 "
    "ON CONFLICT DO NOTHING), "
    "kept AS (SELECT day, tag_key, tag_value FROM old UNION ALL "
    "SELECT day, tag_key, raw_value FROM admit)"
)
# Each group under its value if admitted (or none), else under "(other)".
TAG_VALUE = (
    f"CASE WHEN g.raw_value = '{NO_TAG_VALUE}' OR EXISTS (SELECT FROM kept k "
    "WHERE k.day = g.day AND k.tag_key = g.tag_key AND k.tag_value = g.raw_value) "
    f"THEN g.raw_value ELSE '{OTHER_TAG_VALUE}' END"
)


def _merge_sql(events: str) -> str:
    """The events matching `events` (a condition on the events table) grouped (`g`), admitted
    as above, grouped again by admitted value (`h`, as the main merge's), then added to the
    hourly and daily tag rollups with the main merge's upsert, and to the tag slices with
    its GROUPING SETS."""
    dims = list(zip(sql.DIMS, sql.DIM_SQL, strict=True))
    measures = sql._measures()
    tag = [("tag_key", "tag_key"), ("tag_value", "tag_value")]
    summed = sql._summed()
    hourly_sql = sql._upsert(HOURLY, [("hour", "hour"), *tag, *dims], summed, source="h")
    daily_sql = sql._upsert(DAILY, [("day", DAY), *tag, *dims], summed, source="h")
    value = f"COALESCE(LEFT(ev.tags ->> k.key, {TAG_VALUE_LENGTH}), '{NO_TAG_VALUE}')"
    g = ", ".join(
        [
            "tenant_id",
            "hour",
            "k.key AS tag_key",
            f"{value} AS raw_value",
            *(f"{expr} AS {name}" for name, expr in sql.H_DIMS),
        ]
    )
    g += ", " + ", ".join(f"{expr} AS {name}" for name, expr in measures)
    g += f", {DAY} AS day"
    h = ", ".join(["tenant_id", "hour", "tag_key", f"{TAG_VALUE} AS tag_value", *H_NAMES])
    h += ", " + ", ".join(f"SUM({m}) AS {m}" for m, _ in measures)
    positions = ", ".join(str(i) for i in range(1, len(H_NAMES) + 5))
    return (
        f"WITH ev AS MATERIALIZED (SELECT {TAG_COLUMNS} FROM {sql.EVENTS} WHERE {events}), "  # noqa: S608
        f"g AS MATERIALIZED (SELECT {g} FROM ev CROSS JOIN unnest(%(keys)s::text[]) AS k(key) "
        f"GROUP BY {positions}), "
        f"{ADMISSION}, "
        f"h AS MATERIALIZED (SELECT {h} FROM g GROUP BY {positions}), "
        f"u0 AS ({hourly_sql}), u1 AS ({daily_sql}), "
        f"s AS MATERIALIZED ({sql._slice_sums('h', TAG, TAG_SLICES)}), "
        f"u2 AS ({sql._slice_upsert(HOURLY_SLICES, ('hour', 'hour'), 's', TAG)}), "
        f"u3 AS ({sql._slice_upsert(DAILY_SLICES, ('day', DAY), 's', TAG)}) "
        "SELECT COUNT(*) FROM ev"
    )


BATCH_MERGE_SQL = _merge_sql(sql.BATCH_EVENTS)
# The re-roll and the recompute: settled events of a stretch of hours (pending batches are
# left to their own merge, which adds them then: nothing is counted twice).
SETTLED_MERGE_SQL = _merge_sql(f"{sql.SETTLED_EVENTS_SINCE} AND hour < %(end)s")


def chosen_keys(tenant_id: int) -> list[str]:
    """The tenant's tag dimension keys, in their order (read under the rollup lock)."""
    rows = TagDimension.objects.for_tenant(tenant_id).order_by("position", "key")
    return list(rows.values_list("key", flat=True))


def value_cap() -> int:
    return int(settings.TAG_VALUES_PER_DAY)


def add_batches(tenant_id: int, batch_ids: list[int]) -> None:
    """Add these batches' events to the tag rollups of the tenant's chosen keys (the caller
    holds the lock and runs the main merge of the same batches in the same transaction)."""
    keys = chosen_keys(tenant_id)
    if not keys:
        return
    params: dict[str, Any] = {
        "tenant": tenant_id, "batches": batch_ids, "keys": keys, "cap": value_cap()
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql.NO_JIT)  # see `sql.NO_JIT`: 24-26 s of compiling against 0.4-0.8 s
        cursor.execute(BATCH_MERGE_SQL, params)


def add_settled(tenant_id: int, keys: list[str], start: datetime, end: datetime) -> int:
    """Add the tenant's settled events of hours [start, end) to the tag rollups of `keys`;
    returns how many events. The caller holds the lock and emptied those hours' rows."""
    if not keys:
        return 0
    params: dict[str, Any] = {
        "tenant": tenant_id, "keys": keys, "cap": value_cap(), "start": start, "end": end
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql.NO_JIT)
        cursor.execute(SETTLED_MERGE_SQL, params)
        (count,) = cursor.fetchone() or (0,)
        return int(count)


# The recompute (`rollup --since`) and the re-roll reach every event up to this hour.
NO_END = datetime(9999, 1, 1, tzinfo=UTC)


def delete_rows(tenant_id: int, keys: list[str], start: datetime, end: datetime = NO_END) -> None:
    """Empty the tag rollups and admitted values of `keys` over the hours [start, end)."""
    hours = {"hour__gte": start, "hour__lt": end}
    for hourly in (TagHourlyRollup, TagHourlySlice):
        hourly.objects.for_tenant(tenant_id).filter(tag_key__in=keys, **hours).delete()
    days = {"day__gte": start.date(), "day__lt": end.date() if end < NO_END else date.max}
    for daily in (TagDailyRollup, TagDailySlice, TagValue):
        daily.objects.for_tenant(tenant_id).filter(tag_key__in=keys, **days).delete()


def recompute_since(tenant_id: int, start: datetime) -> int:
    """The tag rollups from `start` (a day's start) on again from the settled raw events,
    as `services.recompute` does the others; the caller holds the lock."""
    keys = chosen_keys(tenant_id)
    if not keys:
        return 0
    delete_rows(tenant_id, keys, start)
    return add_settled(tenant_id, keys, start, NO_END)
