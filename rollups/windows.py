"""Per-consumer totals over the dashboard's standard day ranges, for fast top-N tables.

Ranking end users over 30 days from per-day rows means aggregating every user of every day
(about 600k rows for 100k users) on each page view. Instead, the closed days of each
standard range (everything but today) are a `ConsumerWindow`, built once from the daily
rollups when the UTC day turns, and today is a window of its own. A merge adds its events to
today's window (and late events to the closed window of their day), two rows per consumer:
per environment and over all. Building and adding both happen under the tenant's rollup
lock, so a window always equals the daily rows of its days.

A page ranks "closed days + today" with the threshold algorithm over the two windows' top
rows (see `_threshold_top`), so it reads a few index pages however many consumers there are.
Pages use windows only when their range's days match them and no team filter applies;
anything else is summed from the daily rows.

Today's window is *live*: every merge adds to it, so it keeps per consumer only the row over
all environments (plus the per-environment totals). That is one window row per consumer a
merge touches instead of two; the window rows are the merge's dearest writes (the top-N
index holds the cost, so no update of them is HOT). A page filtered by environment ranks
today from the day's per-consumer daily rows of that environment instead (one day's rows of
one environment). When the day turns the live window is rebuilt whole, as a closed one.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import reduce
from typing import Any

from django.db import connection
from django.db.models import OuterRef, Q, Subquery

from rollups.models import (
    CONSUMER_MEASURES,
    ConsumerDailyRollup,
    ConsumerWindow,
    ConsumerWindowRollup,
)

Window = tuple[date, date]
WINDOWS = ConsumerWindowRollup._meta.db_table
DAILY = ConsumerDailyRollup._meta.db_table
WINDOW_LIST = ConsumerWindow._meta.db_table


def closed_part(first: date, last: date, today: date) -> Window | None:
    """The days of [first, last] before today, or None when there are none."""
    last = min(last, today - timedelta(days=1))
    return (first, last) if first <= last else None


def standard_windows(now: datetime) -> set[Window]:
    """The closed days of the dashboard's standard ranges at `now` (UTC).

    The last 24 hours start yesterday (today only from 23:00 on: no closed days); the test
    of `dashboard.filters` checks every standard range's closed days are one of these.
    """
    today = now.astimezone(UTC).date()
    month = today.replace(day=1)
    last_month_end = month - timedelta(days=1)
    ranges = [
        (today - timedelta(days=1), today),
        (today - timedelta(days=6), today),
        (today - timedelta(days=29), today),
        (month, today),
        (last_month_end.replace(day=1), last_month_end),
    ]
    closed = {part for first, last in ranges if (part := closed_part(first, last, today))}
    return closed | {(today, today)}  # today's own window, added to by every merge


def is_live(window: Window, today: date) -> bool:
    """Today's window, the one every merge adds to (see the module docstring)."""
    return window == (today, today)


def ensure_windows(tenant_id: int, now: datetime) -> None:
    """Drop windows that are no longer standard, build the missing ones (caller holds the lock).

    Yesterday's live window is no longer wanted as it is (it lacks the per-environment rows
    of each consumer), so it is rebuilt whole from the daily rows when the day turns."""
    today = now.astimezone(UTC).date()
    wanted = {(*w, is_live(w, today)) for w in standard_windows(now)}
    have = set(
        ConsumerWindow.objects.for_tenant(tenant_id).values_list("first_day", "last_day", "live")
    )
    for first, last, _ in have - wanted:
        ConsumerWindow.objects.for_tenant(tenant_id).filter(first_day=first, last_day=last).delete()
        ConsumerWindowRollup.objects.for_tenant(tenant_id).filter(
            first_day=first, last_day=last
        ).delete()
    for first, last, live in sorted(wanted - have):
        _build(tenant_id, first, last, live)


def drop_windows(tenant_id: int) -> None:
    """Forget every window (after a recompute rewrote the daily rows); the next ensure rebuilds."""
    ConsumerWindowRollup.objects.for_tenant(tenant_id).delete()
    ConsumerWindow.objects.for_tenant(tenant_id).delete()


def _build(tenant_id: int, first: date, last: date, live: bool) -> None:
    with connection.cursor() as cursor:
        for kept in kinds_of(live):
            cursor.execute(BUILD_SQL[kept], [first, last, tenant_id, first, last])
    ConsumerWindow.objects.create(tenant_id=tenant_id, first_day=first, last_day=last, live=live)


# Each window holds four kinds of rows per consumer kind: per consumer and environment, per
# consumer over all environments (environment ""), and the totals of all consumers (consumer
# "") per environment and overall, so a page's share column needs no sum over every row.
# The live window (today's) leaves out the first kind.
PER_ENVIRONMENT: tuple[str, ...] = ("consumer", "environment")
ROLLUPS: tuple[tuple[str, ...], ...] = (PER_ENVIRONMENT, ("consumer",), ("environment",), ())


def kinds_of(live: bool) -> tuple[tuple[str, ...], ...]:
    """The row kinds a window keeps: all four, or the live window's three."""
    return tuple(kept for kept in ROLLUPS if not (live and kept == PER_ENVIRONMENT))


_KEYS = ("first_day", "last_day", "kind", "consumer", "environment")
_COLUMNS = f"tenant_id, {', '.join(_KEYS)}, {', '.join(CONSUMER_MEASURES)}"


def _build_sql(kept: tuple[str, ...]) -> str:
    """One of the four row kinds of a new window, from the daily rollups."""
    keys = [k if k in kept else "''" for k in ("consumer", "environment")]
    return (
        f"INSERT INTO {WINDOWS} ({_COLUMNS}) "  # noqa: S608 - built from constants
        f"SELECT tenant_id, %s, %s, kind, {', '.join(keys)}, "
        f"{', '.join(f'SUM({m})' for m in CONSUMER_MEASURES)} "
        f"FROM {DAILY} WHERE tenant_id = %s AND day >= %s AND day <= %s "
        f"GROUP BY {', '.join(['tenant_id', 'kind', *kept])}"
    )


BUILD_SQL = {kept: _build_sql(kept) for kept in ROLLUPS}


def add_consumer_sums_sql(source: str) -> str:
    """The merge's window upsert: its per-consumer daily sums (`source`, with the daily
    rollup's columns) added to each window that holds their day, in all the window's row
    kinds at once (the live window has no per-environment consumer rows). It adds to the
    windows listed in `ConsumerWindow` only: none after `drop_windows`."""
    return (
        f"INSERT INTO {WINDOWS} ({_COLUMNS}) "  # noqa: S608 - built from constants
        "SELECT c.tenant_id, w.first_day, w.last_day, c.kind, COALESCE(c.consumer, ''), "
        "COALESCE(c.environment, ''), "
        + ", ".join(f"SUM(c.{m})" for m in CONSUMER_MEASURES)
        + f" FROM {source} c JOIN {WINDOW_LIST} w ON w.tenant_id = c.tenant_id "
        "AND c.day BETWEEN w.first_day AND w.last_day "
        "GROUP BY c.tenant_id, w.first_day, w.last_day, w.live, c.kind, GROUPING SETS ("
        + ", ".join("(" + ", ".join(f"c.{k}" for k in kept) + ")" for kept in ROLLUPS)
        + ") HAVING NOT (w.live AND GROUPING(c.consumer, c.environment) = 0) "
        "ORDER BY 1, 2, 3, 4, 5, 6 "
        f"ON CONFLICT (tenant_id, {', '.join(_KEYS)}) DO UPDATE SET "
        + ", ".join(f"{m} = {WINDOWS}.{m} + EXCLUDED.{m}" for m in CONSUMER_MEASURES)
    )


def top_consumers(
    tenant_id: int, kind: str, first: date, last: date, environment: str, today: date, limit: int
) -> tuple[list[dict[str, Any]], Decimal] | None:
    """The top `limit` consumers of [first, last] and all consumers' total, from the window of
    its closed days and today's window; None when a window it needs is not built."""
    parts = [p for p in (closed_part(first, last, today), _live_part(first, last, today)) if p]
    totals = _window_totals(tenant_id, parts, kind, environment, today)
    if not parts or totals is None:
        return None
    lists = [_List(p, from_days=bool(environment) and is_live(p, today)) for p in parts]
    return _threshold_top(tenant_id, lists, kind, environment, limit), totals


def _live_part(first: date, last: date, today: date) -> Window | None:
    return (today, today) if first <= today <= last else None


@dataclass(frozen=True)
class _List:
    """One part of a page's range, ranked from its window rows or, for the live window's
    per-environment figures it does not keep, from that day's daily rows."""

    part: Window
    from_days: bool


def _threshold_top(
    tenant_id: int, lists: list[_List], kind: str, environment: str, limit: int
) -> list[dict[str, Any]]:
    """Exact top N of sums over windows without summing every consumer (Fagin's threshold
    algorithm): read each window's top k by index; a consumer in none of those lists spends
    at most the sum of the lists' k-th values, so once the N-th best exact total of the
    consumers seen beats that, the ranking is final. Otherwise read twice as deep."""
    depth = max(8 * limit, 80)  # deep enough that most pages need one round
    while True:
        rows, bounds = _threshold_round(tenant_id, lists, kind, environment, depth, limit)
        exhausted = all(b is None for b in bounds)  # every list shorter than `depth`
        bound = _money_sum(tuple(bounds))
        if exhausted or (len(rows) == limit and rows[-1]["c"] > bound):
            return rows
        depth *= 2


def _threshold_round(
    tenant_id: int, lists: list[_List], kind: str, environment: str, depth: int, limit: int
) -> tuple[list[dict[str, Any]], list[Any]]:
    """One round in one query: the best `limit` exact sums over the parts of the consumers in
    any part's top `depth`, best first (ties by name, as the daily path), and each part's
    depth-th value (None when its list is shorter)."""
    params: dict[str, Any] = {"tenant": tenant_id, "kind": kind, "env": environment}
    params |= {"depth": depth, "kth": depth - 1, "limit": limit}
    for i, (first, last) in enumerate(p.part for p in lists):
        params |= {f"first{i}": first, f"last{i}": last}
    with connection.cursor() as cursor:
        cursor.execute(_round_sql(tuple(p.from_days for p in lists)), params)
        found = cursor.fetchall()
    count = len(lists)
    bounds = list(found[0][-count:]) if found else [None] * count
    rows = [
        {"consumer": r[0], "c": _money_sum(r[1 : 1 + count]), "n": r[1 + count], "t": r[2 + count]}
        for r in found
        if r[0] is not None
    ]
    return rows, bounds


def _money_sum(values: tuple[Decimal | None, ...]) -> Decimal:
    """The parts' sums added up; a part with no row (None) adds nothing."""
    return sum((v for v in values if v is not None), Decimal(0))


_KEY = "tenant_id = %(tenant)s AND kind = %(kind)s AND environment = %(env)s"
# Part i's rows: its window's, or (`from_days`) the daily rows of its days.
_WINDOW_PART = (
    f"FROM {WINDOWS} WHERE {_KEY} AND first_day = %(first{{i}})s AND last_day = %(last{{i}})s"
)
_DAYS_PART = f"FROM {DAILY} WHERE {_KEY} AND day >= %(first{{i}})s AND day <= %(last{{i}})s"
# Part i's consumers with their spend, to rank (a window row is one consumer's sum already).
_WINDOW_LIST = f"SELECT consumer, cost_usd AS c {_WINDOW_PART} AND consumer <> ''"
_DAYS_LIST = f"SELECT consumer, SUM(cost_usd) AS c {_DAYS_PART} GROUP BY consumer"


def _round_sql(from_days: tuple[bool, ...]) -> str:
    """The query of `_threshold_round` over parts read from windows or from days.

    A seen consumer's sums are correlated subqueries, one per part, each an index lookup by
    the part's key and the consumer (a join tempts the planner into reading every row of the
    windows); requests and tokens only for the `limit` consumers ranked. A left join from
    the one-row table of bounds, so those come back even when no consumer is seen."""
    parts = range(len(from_days))
    ranked_lists = [
        f"SELECT consumer, c FROM ({(_DAYS_LIST if days else _WINDOW_LIST).format(i=i)}) AS "  # noqa: S608
        f"list{i} ORDER BY c DESC, consumer"
        for i, days in enumerate(from_days)
    ]
    top = "SELECT consumer FROM ({} LIMIT %(depth)s) AS top{}"
    seen = " UNION ".join(top.format(ranked, i) for i, ranked in enumerate(ranked_lists))
    kth = ", ".join(
        f"(SELECT c FROM ({ranked} LIMIT 1 OFFSET %(kth)s) AS kth{i}) AS bound{i}"  # noqa: S608
        for i, ranked in enumerate(ranked_lists)
    )
    lookups = [_DAYS_PART if days else _WINDOW_PART for days in from_days]
    looked_up = ", ".join(
        _in_part("cost_usd", lookups[i], "seen", i) + f" AS cost{i}" for i in parts
    )
    costs = [f"cost{i}" for i in parts]
    ranked = (
        f"SELECT * FROM (SELECT seen.consumer, {looked_up} FROM ({seen}) AS seen) AS sums "  # noqa: S608
        f"ORDER BY {_sum_of(costs)} DESC, consumer LIMIT %(limit)s"
    )
    costs = [f"ranked.{cost}" for cost in costs]
    requests = [_in_part("requests", lookups[i], "ranked", i) for i in parts]
    tokens = [_in_part("input_tokens + output_tokens", lookups[i], "ranked", i) for i in parts]
    return (
        f"SELECT ranked.consumer, {', '.join(costs)}, {_sum_of(requests)}, {_sum_of(tokens)}, "  # noqa: S608
        f"b.* FROM (SELECT {kth}) AS b LEFT JOIN ({ranked}) AS ranked ON TRUE "
        f"ORDER BY {_sum_of(costs)} DESC, ranked.consumer"
    )


def _in_part(measure: str, part: str, row: str, i: int) -> str:
    """A measure of the consumer in `row` in part i (0 where it is absent)."""
    one = f"SELECT SUM({measure}) {part.format(i=i)} AND consumer = {row}.consumer"
    return f"COALESCE(({one}), 0)"


def _sum_of(terms: list[str]) -> str:
    return "(" + " + ".join(terms) + ")"


def _window_totals(
    tenant_id: int, parts: list[Window], kind: str, environment: str, today: date
) -> Decimal | None:
    """All consumers' spend over the parts (0 if none); None if a part's window is not built
    (or not yet rebuilt: yesterday's live window before the day's first merge or refresh).

    One query: the parts' window rows, each with its total row looked up beside it.
    """
    if not parts:
        return None
    total = ConsumerWindowRollup.objects.for_tenant(tenant_id).filter(
        first_day=OuterRef("first_day"),
        last_day=OuterRef("last_day"),
        kind=kind,
        environment=environment,
        consumer="",
    )
    built = ConsumerWindow.objects.for_tenant(tenant_id).filter(
        reduce(
            operator.or_,
            (Q(first_day=a, last_day=b, live=is_live((a, b), today)) for a, b in parts),
        )
    )
    found = list(built.annotate(total=Subquery(total.values("cost_usd")[:1])).values_list("total"))
    if len(found) < len(parts):
        return None
    return _money_sum(tuple(t for (t,) in found))
