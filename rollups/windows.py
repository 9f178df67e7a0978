"""Per-consumer totals over the dashboard's standard day ranges, for fast top-N tables.

Ranking end users over 30 days from per-day rows means aggregating every user of every day
(about 600k rows for 100k users) on each page view. Instead, the closed days of each
standard range (everything but today) are a `ConsumerWindow`: built once from the daily
rollups when the UTC day turns; a merge adds to it only the rare late event for one of its
days, so keeping windows costs the merge next to nothing. Building and adding both happen
under the tenant's rollup lock, so a window always equals the daily rows of its days.

A page then ranks window + today: a consumer outside the window's top N with no spend today
cannot overtake the window's top N, so the candidates are those N plus today's consumers.
Pages use a window only when their range's closed days match it exactly and no team filter
applies; anything else is summed from the daily rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Subquery

from rollups.models import ConsumerDailyRollup, ConsumerWindow, ConsumerWindowRollup

Window = tuple[date, date]
MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd")
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
    return {part for first, last in ranges if (part := closed_part(first, last, today))}


def ensure_windows(tenant_id: int, now: datetime) -> None:
    """Drop windows that are no longer standard, build the missing ones (caller holds the lock)."""
    wanted = standard_windows(now)
    have = set(ConsumerWindow.objects.for_tenant(tenant_id).values_list("first_day", "last_day"))
    for first, last in have - wanted:
        ConsumerWindow.objects.for_tenant(tenant_id).filter(first_day=first, last_day=last).delete()
        ConsumerWindowRollup.objects.for_tenant(tenant_id).filter(
            first_day=first, last_day=last
        ).delete()
    for first, last in sorted(wanted - have):
        _build(tenant_id, first, last)


def drop_windows(tenant_id: int) -> None:
    """Forget every window (after a recompute rewrote the daily rows); the next ensure rebuilds."""
    ConsumerWindowRollup.objects.for_tenant(tenant_id).delete()
    ConsumerWindow.objects.for_tenant(tenant_id).delete()


def _build(tenant_id: int, first: date, last: date) -> None:
    day = connection.ops.adapt_datefield_value
    with connection.cursor() as cursor:
        for statement in BUILD_SQL:
            cursor.execute(statement, [day(first), day(last), tenant_id, day(first), day(last)])
    ConsumerWindow.objects.create(tenant_id=tenant_id, first_day=first, last_day=last)


# Each window holds four kinds of rows per consumer kind: per consumer and environment, per
# consumer over all environments (environment ""), and the totals of all consumers (consumer
# "") per environment and overall, so a page's share column needs no sum over every row.
ROLLUPS = (("consumer", "environment"), ("consumer",), ("environment",), ())
_KEYS = ("first_day", "last_day", "kind", "consumer", "environment")
_COLUMNS = f"tenant_id, {', '.join(_KEYS)}, {', '.join(MEASURES)}"


def _build_sql(kept: tuple[str, ...]) -> str:
    """One of the four row kinds of a new window, from the daily rollups (portable SQL)."""
    keys = [k if k in kept else "''" for k in ("consumer", "environment")]
    return (
        f"INSERT INTO {WINDOWS} ({_COLUMNS}) "  # noqa: S608 - built from constants
        f"SELECT tenant_id, %s, %s, kind, {', '.join(keys)}, "
        f"{', '.join(f'SUM({m})' for m in MEASURES)} "
        f"FROM {DAILY} WHERE tenant_id = %s AND day >= %s AND day <= %s "
        f"GROUP BY {', '.join(['tenant_id', 'kind', *kept])}"
    )


BUILD_SQL = [_build_sql(kept) for kept in ROLLUPS]


def add_daily_rows(tenant_id: int, rows: list[dict[str, Any]]) -> None:
    """Add per-consumer daily rows (as a merge produces them) to every window of their day."""
    from rollups.services import _upsert_add

    windows = list(
        ConsumerWindow.objects.for_tenant(tenant_id).values_list("first_day", "last_day")
    )
    sums: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        for first, last in windows:
            if not first <= row["day"] <= last:
                continue
            for kept in ROLLUPS:
                names = [row[k] if k in kept else "" for k in ("consumer", "environment")]
                key = (first, last, row["kind"], *names)
                target = sums.setdefault(key, dict(zip(_KEYS, key, strict=True)))
                for m in MEASURES:
                    target[m] = target.get(m, 0) + row[m]
    _upsert_add(ConsumerWindowRollup, tenant_id, _KEYS, MEASURES, list(sums.values()))


# The PostgreSQL merge: the same per-consumer sums the daily upserts take from the batch's
# events, for each window that holds the event's day, in all four row kinds at once.
ADD_BATCHES_SQL = (
    f"INSERT INTO {WINDOWS} ({_COLUMNS}) "  # noqa: S608 - built from constants
    "SELECT e.tenant_id, w.first_day, w.last_day, e.kind, COALESCE(e.consumer, ''), "
    "COALESCE(e.environment, ''), "
    "SUM(e.requests), SUM(e.input_tokens), SUM(e.output_tokens), SUM(e.cost_usd) "
    "FROM ({events}) e "
    f"JOIN {WINDOW_LIST} w ON w.tenant_id = e.tenant_id "
    "AND e.day BETWEEN w.first_day AND w.last_day "
    "GROUP BY e.tenant_id, w.first_day, w.last_day, e.kind, GROUPING SETS ("
    + ", ".join("(" + ", ".join(f"e.{k}" for k in kept) + ")" for kept in ROLLUPS)
    + ") ORDER BY 1, 2, 3, 4, 5, 6 "
    f"ON CONFLICT (tenant_id, {', '.join(_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{m} = {WINDOWS}.{m} + EXCLUDED.{m}" for m in MEASURES)
)


_EVENT_COLUMNS = (
    "tenant_id, (hour AT TIME ZONE 'UTC')::date AS day, {kind} AS kind, {consumer} AS consumer, "
    "environment, 1 AS requests, input_tokens, output_tokens, cost_usd"
)


def add_batches_sql(events_table: str) -> str:
    """The window upsert for the events in `events_table` (the merge's batch of events)."""
    batch = f"FROM {events_table} WHERE TRUE"
    users = _EVENT_COLUMNS.format(kind="'user'", consumer="user_id")
    keys = _EVENT_COLUMNS.format(kind="'key'", consumer="api_key_id::text")
    events = (
        f"SELECT {users} {batch} AND user_id <> '' "
        f"UNION ALL SELECT {keys} {batch} AND api_key_id IS NOT NULL"
    )
    return ADD_BATCHES_SQL.format(events=events)


def top_consumers(
    tenant_id: int, kind: str, first: date, last: date, environment: str, today: date, limit: int
) -> tuple[list[dict[str, Any]], Decimal] | None:
    """The top `limit` consumers of [first, last] and all consumers' total, from the window
    of its closed days plus today's daily rows; None when no such window is built."""
    closed = closed_part(first, last, today)
    total = None if closed is None else _window_total(tenant_id, closed, kind, environment)
    if closed is None or total is None:
        return None
    live = last >= today
    params: list[Any] = [tenant_id, kind, today, *([environment] if environment else []), live]
    params += [tenant_id, *closed, kind, environment, limit, tenant_id, *closed, kind]
    params += [environment, limit]
    with connection.cursor() as cursor:
        cursor.execute(_ranking_sql(bool(environment)), params)
        rows = [dict(zip(("consumer", "c", "n", "t", "today"), r, strict=True)) for r in cursor]
    today_total = Decimal(rows[0]["today"] or 0) if rows else Decimal(0)
    return [_exact(r) for r in rows], total + today_total


def _exact(row: dict[str, Any]) -> dict[str, Any]:
    # SQLite hands back sums of decimals as floats; money stays Decimal on every backend.
    return {**row, "c": Decimal(str(row["c"])), "n": int(row["n"]), "t": int(row["t"])}


def _ranking_sql(by_environment: bool) -> str:
    today_env = "AND environment = %s " if by_environment else ""
    return (
        "WITH today AS ("  # noqa: S608 - built from constants
        "SELECT consumer, SUM(cost_usd) AS c, SUM(requests) AS n, "
        "SUM(input_tokens + output_tokens) AS t "
        f"FROM {DAILY} WHERE tenant_id = %s AND kind = %s AND day = %s {today_env}AND %s "
        "GROUP BY consumer), "
        "best AS (SELECT consumer FROM ("
        f"SELECT consumer, cost_usd FROM {WINDOWS} WHERE tenant_id = %s AND first_day = %s "
        "AND last_day = %s AND kind = %s AND environment = %s AND consumer <> '' "
        "ORDER BY cost_usd DESC, consumer LIMIT %s) top), "
        "candidates AS (SELECT consumer FROM today UNION SELECT consumer FROM best) "
        "SELECT c.consumer, COALESCE(w.cost_usd, 0) + COALESCE(d.c, 0) AS cost, "
        "COALESCE(w.requests, 0) + COALESCE(d.n, 0), "
        "COALESCE(w.input_tokens + w.output_tokens, 0) + COALESCE(d.t, 0), "
        "SUM(COALESCE(d.c, 0)) OVER () "
        "FROM candidates c "
        f"LEFT JOIN {WINDOWS} w ON w.tenant_id = %s AND w.first_day = %s AND w.last_day = %s "
        "AND w.kind = %s AND w.environment = %s AND w.consumer = c.consumer "
        "LEFT JOIN today d ON d.consumer = c.consumer "
        "ORDER BY cost DESC, c.consumer LIMIT %s"
    )


def _window_total(tenant_id: int, closed: Window, kind: str, environment: str) -> Decimal | None:
    """All consumers' spend in a built window (0 if it has none); None if it is not built.

    One query: the window's row, with its total row looked up beside it.
    """
    first, last = closed
    total = ConsumerWindowRollup.objects.for_tenant(tenant_id).filter(
        first_day=first, last_day=last, kind=kind, environment=environment, consumer=""
    )
    built = ConsumerWindow.objects.for_tenant(tenant_id).filter(first_day=first, last_day=last)
    row = built.annotate(total=Subquery(total.values("cost_usd")[:1])).values_list("total").first()
    return None if row is None else Decimal(str(row[0] or 0))
