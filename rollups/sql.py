"""The rollup merge: every rollup table in one INSERT ... SELECT each, all in one statement.

There is one merge (`_merge_sql`) over two sets of events: the events of some pending batches
(`add_batches`, every rollup run) and a tenant's settled events from an hour on
(`add_settled_since`, the recompute of `rollup --since`). Doing it in the database means no
Python work per group, which matters for per-user rollups where almost every event of a merge
has a user of its own. The property tests check the rollups against the raw events.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import connection

from ingest.models import PendingBatch, UsageEvent
from pricing.resolver import CostSource
from rollups import windows
from rollups.models import (
    ALL_ENVIRONMENTS,
    CONSUMER_MEASURES,
    LATENCY_BOUNDS_MS,
    LATENCY_FIELDS,
    SLICES,
    TAG_SLICES,
    TOKENS_BOUNDS,
    TOKENS_FIELDS,
    ConsumerDailyRollup,
    DailyRollup,
    DailySlice,
    HourlyRollup,
    HourlySlice,
    IngestCount,
    LifetimeRollup,
    TagDailyRollup,
    TagDailySlice,
    TagHourlyRollup,
    TagHourlySlice,
)
from rollups.statuses import status_class_sql

EVENTS = UsageEvent._meta.db_table
DIMS = ("team_pk", "feature", "provider", "model", "environment", "endpoint", "status")
# Each dimension over `h`, the merge's events grouped by hour and dimensions (`_merge_sql`).
DIM_SQL = ("COALESCE(team_id, 0)", "feature", "provider", "model", "environment", "endpoint",
           "status")  # fmt: skip
# The columns `h` groups the events by, as expressions over the events.
H_DIMS = (("team_id", "COALESCE(team_id, 0)"), ("feature", "feature"), ("provider", "provider"),
          ("model", "model"), ("environment", "environment"), ("endpoint", "endpoint"),
          ("status", status_class_sql("status_code")))  # fmt: skip


def _buckets(expr: str, names: tuple[str, ...], bounds: tuple[int, ...]) -> list[tuple[str, str]]:
    out, lower = [], None
    for name, upper in zip(names, (*bounds, None), strict=True):
        conds = [f"{expr} IS NOT NULL"]
        conds += [f"{expr} > {lower}"] if lower is not None else []
        conds += [f"{expr} <= {upper}"] if upper is not None else []
        out.append((name, f"COUNT(*) FILTER (WHERE {' AND '.join(conds)})"))
        lower = upper
    return out


def _measures() -> list[tuple[str, str]]:
    src = CostSource
    return [
        ("requests", "COUNT(*)"),
        ("errors", "COUNT(*) FILTER (WHERE status_code >= 400)"),
        ("input_tokens", "SUM(input_tokens)"),
        ("output_tokens", "SUM(output_tokens)"),
        ("cache_read_tokens", "SUM(cache_read_tokens)"),
        ("cache_write_tokens", "SUM(cache_write_tokens)"),
        ("cost_usd", "SUM(cost_usd)"),
        (
            "cost_override",
            f"COALESCE(SUM(cost_usd) FILTER (WHERE cost_source = '{src.OVERRIDE}'), 0)",
        ),
        (
            "cost_catalog",
            f"COALESCE(SUM(cost_usd) FILTER (WHERE cost_source = '{src.CATALOG}'), 0)",
        ),
        ("cost_client", f"COALESCE(SUM(cost_usd) FILTER (WHERE cost_source = '{src.CLIENT}'), 0)"),
        ("unpriced_requests", f"COUNT(*) FILTER (WHERE cost_source = '{src.UNPRICED}')"),
        (
            "unpriced_tokens",
            f"COALESCE(SUM(input_tokens + output_tokens) FILTER (WHERE cost_source = '{src.UNPRICED}'), 0)",
        ),
        ("latency_sum_ms", "COALESCE(SUM(latency_ms), 0)"),
        ("latency_count", "COUNT(latency_ms)"),
        *_buckets("latency_ms", LATENCY_FIELDS, LATENCY_BOUNDS_MS),
        *_buckets("(input_tokens + output_tokens)", TOKENS_FIELDS, TOKENS_BOUNDS),
    ]


# What every usage rollup row sums, in the order of the rollup tables' columns.
MEASURES = tuple(name for name, _ in _measures())


def _summed() -> list[tuple[str, str]]:
    """Each measure summed over rows that hold it under its own name (`h`, the slice sums)."""
    return [(m, f"SUM({m})") for m in MEASURES]


def _upsert(
    table: str,
    keys: list[tuple[str, str]],
    measures: list[tuple[str, str]],
    where: str = "",
    source: str = "ev",
) -> str:
    """INSERT ... SELECT grouped events ... ON CONFLICT add; rows sorted so writers lock in order."""
    key_names = ", ".join(["tenant_id", *(k for k, _ in keys)])
    key_exprs = ", ".join(["tenant_id", *(e for _, e in keys)])
    names = ", ".join(m for m, _ in measures)
    exprs = ", ".join(e for _, e in measures)
    updates = ", ".join(f"{m} = {table}.{m} + EXCLUDED.{m}" for m, _ in measures)
    positions = ", ".join(str(i) for i in range(1, len(keys) + 2))
    return (
        f"INSERT INTO {table} ({key_names}, {names}) "  # noqa: S608 - built from constants
        f"SELECT {key_exprs}, {exprs} FROM {source} WHERE TRUE {where}"
        f"GROUP BY {positions} ORDER BY {positions} "
        f"ON CONFLICT ({key_names}) DO UPDATE SET {updates}"
    )


# The dimensions a slice may keep, in GROUPING() argument order (first = highest bit).
SLICE_DIMS = (("team_pk", "COALESCE(team_id, 0)", "0"), ("feature", "feature", "''"),
              ("provider", "provider", "''"), ("model", "model", "''"),
              ("endpoint", "endpoint", "''"), ("status", "status", "''"))  # fmt: skip


SLICE_KEYS = ("grouping", *(n for n, _, _ in SLICE_DIMS), "environment")


def _slice_sums(
    source: str, extra: tuple[str, ...] = (), slices: dict[str, tuple[str, ...]] = SLICES
) -> str:
    """Every slice of the merge's grouped events per hour in one pass: GROUPING SETS, two
    sets per slice. Computed once; the hourly and the daily slices are both summed from it.

    GROUPING() has a bit set for each dimension a row is *not* grouped by; that names the
    slice, and the dimensions it leaves out take their blank value. Each slice is summed once
    per environment and once over all of them (environment '', ALL_ENVIRONMENTS), so an
    unfiltered page reads one row where it would sum one per environment. `extra` columns
    (the tag slices' key and value) are kept in every set. The rows are named as the slice
    tables' columns (`SLICE_KEYS`, then the measures).
    """
    width = len(SLICE_DIMS)
    label = " ".join(
        f"WHEN {sum(1 << (width - 1 - i) for i, d in enumerate(SLICE_DIMS) if d[0] not in dims)} "
        f"THEN '{name}'"
        for name, dims in slices.items()
    )
    exprs = ", ".join(e for _, e, _ in SLICE_DIMS)
    sets = ", ".join(
        "(" + ", ".join([*env, *(e for n, e, _ in SLICE_DIMS if n in dims)]) + ")"
        for dims in slices.values()
        for env in (["environment"], [])
    )
    dims = ", ".join(f"COALESCE({e}, {blank}) AS {n}" for n, e, blank in SLICE_DIMS)
    kept = "".join(f"{e}, " for e in extra)
    return (
        f"SELECT tenant_id, hour, {kept}CASE GROUPING({exprs}) {label} END AS grouping, "  # noqa: S608
        f"{dims}, COALESCE(environment, '{ALL_ENVIRONMENTS}') AS environment, "
        f"{', '.join(f'{e} AS {m}' for m, e in _summed())} "
        f"FROM {source} GROUP BY tenant_id, hour, {kept}GROUPING SETS ({sets})"
    )


def _slice_upsert(
    table: str, time_key: tuple[str, str], source: str, extra: tuple[str, ...] = ()
) -> str:
    """Add the rows of `_slice_sums` (`source`) to a slice table, summed per `time_key`."""
    keys = ["tenant_id", time_key[0], *extra, *SLICE_KEYS]
    exprs = ["tenant_id", time_key[1], *extra, *SLICE_KEYS]
    positions = ", ".join(str(i) for i in range(1, len(keys) + 1))
    updates = ", ".join(f"{m} = {table}.{m} + EXCLUDED.{m}" for m in MEASURES)
    return (
        f"INSERT INTO {table} ({', '.join(keys)}, {', '.join(MEASURES)}) "  # noqa: S608
        f"SELECT {', '.join(exprs)}, {', '.join(f'SUM({m})' for m in MEASURES)} "
        f"FROM {source} GROUP BY {positions} ORDER BY {positions} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


CONSUMER_KEYS = ("day", "kind", "consumer", "team_pk", "environment")


def _consumer_sums(source: str) -> str:
    """Per day, end user or API key, team and environment: the merge's events summed once.

    Both the daily per-consumer upsert and the consumer windows add these rows (a few
    thousand), so the events are sorted into consumers once, not once per table; keys are
    grouped by their id, and only the groups' ids made text."""
    sums = ", ".join(["COUNT(*)", *(f"SUM({m})" for m in CONSUMER_MEASURES[1:])])
    day = "(hour AT TIME ZONE 'UTC')::date"
    return (
        f"SELECT tenant_id, {day} AS day, 'user' AS kind, user_id AS consumer, "  # noqa: S608
        f"COALESCE(team_id, 0) AS team_pk, environment, COUNT(*) AS requests, "
        + ", ".join(f"SUM({m}) AS {m}" for m in CONSUMER_MEASURES[1:])
        + f" FROM {source} WHERE user_id <> '' GROUP BY 1, 2, 4, 5, 6 "  # noqa: S608
        f"UNION ALL SELECT tenant_id, {day}, 'key', api_key_id::text, COALESCE(team_id, 0), "
        f"environment, {sums} FROM {source} WHERE api_key_id IS NOT NULL "
        f"GROUP BY tenant_id, {day}, api_key_id, COALESCE(team_id, 0), environment"
    )


def _statements() -> list[str]:
    dims = list(zip(DIMS, DIM_SQL, strict=True))
    # Every usage table is summed from `h`, the merge's events grouped once per hour and
    # dimensions: the measures are computed over the events once, not once per table. The
    # slices are summed from `s`, `h`'s slices per hour, so their GROUPING SETS run once.
    summed = _summed()
    day = ("day", "(hour AT TIME ZONE 'UTC')::date")
    consumer = [(k, k) for k in CONSUMER_KEYS]
    consumer_sums = [(m, f"SUM({m})") for m in CONSUMER_MEASURES]
    return [
        _upsert(HourlyRollup._meta.db_table, [("hour", "hour"), *dims], summed, source="h"),
        _upsert(DailyRollup._meta.db_table, [day, *dims], summed, source="h"),
        _slice_upsert(HourlySlice._meta.db_table, ("hour", "hour"), "s"),
        _slice_upsert(DailySlice._meta.db_table, day, "s"),
        _upsert(LifetimeRollup._meta.db_table, dims, summed, source="h"),
        _upsert(ConsumerDailyRollup._meta.db_table, consumer, consumer_sums, source="c"),
        windows.add_consumer_sums_sql("c"),
    ]


STATEMENTS = _statements()


EVENT_COLUMNS = (
    "tenant_id, batch_id, hour, team_id, feature, provider, model, environment, endpoint, "
    "status_code, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
    "cost_usd, cost_source, latency_ms, user_id, api_key_id"
)
PENDING = PendingBatch._meta.db_table
# The events a merge adds. A rollup run's: those of the batches it consumes (by the batch
# index; `tenant_id + 0` keeps the tenant check without tempting the planner into scanning
# all of the tenant's events when its statistics are stale).
BATCH_EVENTS = "batch_id = ANY(%(batches)s::bigint[]) AND tenant_id + 0 = %(tenant)s"
# A recompute's: the tenant's events from an hour on, except those of batches still pending,
# which their own merge adds later (so nothing is counted twice).
SETTLED_EVENTS_SINCE = (
    "tenant_id = %(tenant)s AND hour >= %(start)s AND NOT EXISTS "
    f"(SELECT FROM {PENDING} p WHERE p.id = {EVENTS}.batch_id AND p.tenant_id = %(tenant)s)"
)


# The dimensions as the grouped events (`h`) hold them: under the events' own column names, so
# that every upsert applies `DIM_SQL` / `SLICE_DIMS` to `h` as it would to the events.


def _merge_sql(events: str, answer: str) -> str:
    """The whole merge as one statement: the events (`events`, a condition on the events
    table) are read once, then each rollup upsert is a data-modifying CTE over that one
    materialised set, and the statement ends with `answer`, a query over the events (`ev`)."""
    return (
        f"WITH ev AS MATERIALIZED (SELECT {EVENT_COLUMNS} FROM {EVENTS} WHERE {events}), "  # noqa: S608
        "h AS MATERIALIZED (SELECT tenant_id, hour, "
        + ", ".join(f"{expr} AS {name}" for name, expr in (*H_DIMS, *_measures()))
        + f" FROM ev GROUP BY {', '.join(str(i) for i in range(1, len(H_DIMS) + 3))}), "
        + f"s AS MATERIALIZED ({_slice_sums('h')}), "
        + f"c AS MATERIALIZED ({_consumer_sums('ev')}), "
        + ", ".join(f"u{i} AS ({statement})" for i, statement in enumerate(STATEMENTS))
        + f" {answer}"
    )


# A rollup run's merge answers how many events each batch held (for the ingest counts).
MERGE_SQL = _merge_sql(BATCH_EVENTS, "SELECT batch_id, COUNT(*) FROM ev GROUP BY batch_id")
RECOMPUTE_SQL = _merge_sql(SETTLED_EVENTS_SINCE, "SELECT COUNT(*) FROM ev")


# PostgreSQL plans a merge from estimates that grow with the event table: a run's batches hold
# a few thousand events, but `batch_id = ANY(...)` over a partition of millions is estimated
# far higher. Past `jit_above_cost` it would first compile the statement's ~200 expressions
# with LLVM: at 30M stored events on 2 cores, 12-26 s of compiling per merge against 0.2-0.8 s
# of work, so the rollups fell minutes behind. SET LOCAL: the caller's transaction only, which
# is safe behind PgBouncer.
NO_JIT = "SET LOCAL jit = off"


def add_batches(tenant_id: int, batch_ids: list[int]) -> dict[int, int]:
    """Add the events of these batches to every rollup table (the caller holds the lock);
    returns how many events each batch held (batches that held none are left out)."""
    params: dict[str, Any] = {"tenant": tenant_id, "batches": batch_ids}
    with connection.cursor() as cursor:
        cursor.execute(NO_JIT)
        cursor.execute(MERGE_SQL, params)
        return dict(cursor.fetchall())


def add_settled_since(tenant_id: int, start: datetime) -> int:
    """Add the tenant's events from the hour `start` on, but not those of still-pending
    batches, to every rollup table; returns how many. The caller holds the lock and has
    deleted what these events would add to: the rows of their hours and days, and the
    consumer windows (with no window listed, the merge adds to none)."""
    params: dict[str, Any] = {"tenant": tenant_id, "start": start}
    with connection.cursor() as cursor:
        cursor.execute(NO_JIT)  # as `add_batches`; here 4.8 of 8.2 s for 300k events
        cursor.execute(RECOMPUTE_SQL, params)
        (count,) = cursor.fetchone() or (0,)
        return int(count)


LIFETIME_FROM_DAILY_SQL = (
    f"INSERT INTO {LifetimeRollup._meta.db_table} "  # noqa: S608 - built from constants
    f"(tenant_id, {', '.join(DIMS)}, {', '.join(MEASURES)}) "
    f"SELECT tenant_id, {', '.join(DIMS)}, {', '.join(f'SUM({m})' for m in MEASURES)} "
    f"FROM {DailyRollup._meta.db_table} WHERE tenant_id = %s "
    f"GROUP BY tenant_id, {', '.join(DIMS)}"
)


def lifetime_from_daily(tenant_id: int) -> None:
    """A tenant's all-time rows summed from its daily rows (the caller deleted the old ones)."""
    with connection.cursor() as cursor:
        cursor.execute(LIFETIME_FROM_DAILY_SQL, [tenant_id])


INGEST = IngestCount._meta.db_table
INGEST_COUNTS = ("accepted", "duplicates", "rejected")
ADD_INGEST_COUNTS_SQL = (
    f"INSERT INTO {INGEST} (tenant_id, day, {', '.join(INGEST_COUNTS)}) "  # noqa: S608
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id, day) DO UPDATE SET "
    + ", ".join(f"{m} = {INGEST}.{m} + EXCLUDED.{m}" for m in INGEST_COUNTS)
)


def add_ingest_counts(tenant_id: int, rows: list[tuple[date, int, int, int]]) -> None:
    """Add (day, accepted, duplicates, rejected) rows to the tenant's ingest counts, in day
    order, so two writers lock the rows in the same order."""
    params = [(tenant_id, *row) for row in sorted(rows)]
    with connection.cursor() as cursor:
        cursor.executemany(ADD_INGEST_COUNTS_SQL, params)


def slices_from_rollups(source: str, target: str, time_col: str, tagged: bool = False) -> list[str]:
    """Build a slice table from its full rollup table, for every tenant (`tagged`: the tag
    rollups to the tag slices, per key and value).

    For installations that have rollups from before the slices existed, and for benchmarks
    that write the full rollups directly.
    """
    sums = ", ".join(f"SUM({m})" for m in MEASURES)
    tag = ["tag_key", "tag_value"] if tagged else []
    statements = []
    for name, kept in (TAG_SLICES if tagged else SLICES).items():
        dims = [n if n in kept else blank for n, _, blank in SLICE_DIMS]
        for env, env_group in (("environment", ["environment"]), (f"'{ALL_ENVIRONMENTS}'", [])):
            group = ", ".join(["tenant_id", time_col, *tag, *env_group, *kept])
            statements.append(
                f"INSERT INTO {target} (tenant_id, {time_col}, {''.join(t + ', ' for t in tag)}"  # noqa: S608
                f"grouping, {', '.join(n for n, _, _ in SLICE_DIMS)}, environment, "
                f"{', '.join(MEASURES)}) "
                f"SELECT tenant_id, {time_col}, {''.join(t + ', ' for t in tag)}'{name}', "
                f"{', '.join(dims)}, {env}, {sums} FROM {source} GROUP BY {group}"
            )
    return statements


def rebuild_slices() -> None:
    """Every tenant's slices again from the full rollups (the slice tables must be empty)."""
    _rebuild(((HourlyRollup, HourlySlice, "hour"), (DailyRollup, DailySlice, "day")), False)


def rebuild_tag_slices() -> None:
    """Every tenant's tag slices again from the tag rollups (the tables must be empty)."""
    tables = ((TagHourlyRollup, TagHourlySlice, "hour"), (TagDailyRollup, TagDailySlice, "day"))
    _rebuild(tables, True)


def _rebuild(tables: tuple[tuple[Any, Any, str], ...], tagged: bool) -> None:
    with connection.cursor() as cursor:
        for source, target, time_col in tables:
            for statement in slices_from_rollups(
                source._meta.db_table, target._meta.db_table, time_col, tagged
            ):
                cursor.execute(statement)
