"""Ingest writes: validate, price and store a batch of usage events."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

import psycopg
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg.abc import Buffer
from psycopg.types.json import JsonbBinaryDumper

from core import pooling
from core.signals import events_stored
from core.storage import is_storage_outage, is_transient_conflict
from ingest import partitions, schema
from ingest.groupcommit import GroupCommit
from ingest.models import PendingBatch, UsageEvent
from ingest.schema import COLUMNS, FIELDS, MAX_COST_USD, PG_TYPES, Field, Kind
from ingest.typed import TypedEvent, validate_typed
from ingest.validation import ValidEvent, validate_event
from pricing.catalog import END
from pricing.resolver import TenantPricer, pricer_for
from tenants.models import ApiKey
from tenants.selectors import team_ids_by_slug

TABLE = UsageEvent._meta.db_table
log = logging.getLogger(__name__)
# An event, its team, its timestamp in UTC, its cost and the cost's source: what is stored.
Priced = tuple[ValidEvent, int | None, datetime, Decimal, str]


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def ingest_events(key: ApiKey, raw_events: list[Any]) -> IngestResult:
    """Validate, price and store a batch; valid events are durable when this returns.

    Each event is what `json.loads` made of it, or a `TypedEvent` of the endpoint's decoder."""
    now = timezone.now()
    result = IngestResult()
    valid = _validate_batch(key, raw_events, now, result)
    if valid or result.rejected:
        priced = price_events(key, valid)
        refused = [(e, COST_TOO_HIGH) for e, _, _, cost, _ in priced if cost > MAX_COST_USD]
        if refused:
            priced = [p for p in priced if p[3] <= MAX_COST_USD]
        accepted, refused_by_storage = store_priced(
            key, priced, now, rejected=len(result.rejected) + len(refused)
        )
        result.accepted = accepted
        result.duplicates = len(priced) - len(refused_by_storage) - accepted
        if refused or refused_by_storage:
            _reject(result, raw_events, valid, refused + refused_by_storage)
    return result


COST_TOO_HIGH = {
    "cost_usd": [
        f"the priced cost of this call is more than {MAX_COST_USD} USD, the most one call may cost"
    ]
}


def _reject(
    result: IngestResult,
    raw_events: list[Any],
    valid: list[tuple[ValidEvent, int | None]],
    refused: list[tuple[ValidEvent, dict[str, list[str]]]],
) -> None:
    """Add valid events refused after validation (by their cost, or by the database) to the
    rejected ones, under their index in the request (rare: found from the valid ones' order)."""
    rejected = {r["index"] for r in result.rejected}
    indexes = (i for i in range(len(raw_events)) if i not in rejected)
    index_of = {id(e): i for (e, _), i in zip(valid, indexes, strict=False)}
    for e, errors in refused:
        result.rejected.append({"index": index_of[id(e)], "errors": errors})
    result.rejected.sort(key=itemgetter("index"))


def _validate_batch(
    key: ApiKey, raw_events: list[Any], now: datetime, result: IngestResult
) -> list[tuple[ValidEvent, int | None]]:
    valid: list[tuple[ValidEvent, int | None]] = []
    teams: dict[str, int] = {}
    for index, raw in enumerate(raw_events):
        if type(raw) is TypedEvent:  # decoded by `ingest.typed`: most rules already checked
            event, errors = validate_typed(raw, now)
        else:
            event, errors = validate_event(raw, now)
        if event is not None and event.team is not None:
            teams = teams or team_ids_by_slug(key.tenant_id)
            if event.team not in teams:
                errors = {"team": [f"unknown team {event.team!r}"]}
        if event is None or errors:
            result.rejected.append({"index": index, "errors": errors})
            continue
        valid.append((event, teams[event.team] if event.team is not None else key.team_id))
    return valid


HOUR = timedelta(hours=1)
LAST_HOUR = END.replace(minute=0, second=0, microsecond=0)


def _hour_span(at: datetime) -> tuple[datetime, datetime]:
    """The UTC hour holding `at` (a UTC datetime): its start and its end."""
    hour = at.replace(minute=0, second=0, microsecond=0)
    return hour, hour + HOUR if hour < LAST_HOUR else END


def _rows(
    key: ApiKey, batch_id: int, events: list[tuple[ValidEvent, int | None]], now: datetime
) -> Iterator[tuple[Any, ...]]:
    """One tuple per event, in the order of COLUMNS, priced; tags as a dict (COPY's jsonb)."""
    return _priced_rows(key, batch_id, price_events(key, events), now)


def _priced(pricer: TenantPricer, events: list[tuple[ValidEvent, int | None]]) -> Iterator[Priced]:
    """Each event with its team, its timestamp in UTC, its cost and the cost's source."""
    price = pricer.price_counts
    for e, team_id in events:
        at = e.timestamp
        if at.tzinfo is not UTC:  # UTC: the pricer compares it with UTC bounds, cheaply
            at = at.astimezone(UTC)
        cost, source = price(
            e.provider, e.model, at, e.input_tokens, e.output_tokens, e.cache_read_tokens,
            e.cache_write_tokens, e.cost_usd,
        )  # fmt: skip
        yield e, team_id, at, cost, source


# One tuple per event, in the order of COLUMNS (`ingest.schema.FIELDS`), for COPY.
_PRICED_ROWS = """
def _priced_rows(key, batch_id, priced, now):
    tenant_id, api_key_id, received_at = key.tenant_id, key.pk, now
    hour = end = END  # the previous event's hour: a batch's events mostly share one
    for e, team_id, timestamp, cost_usd, cost_source in priced:
        if not hour <= timestamp < end:
            hour, end = _hour_span(timestamp)
        yield ({row})
"""
_priced_rows: Callable[
    [ApiKey, int, list[Priced], datetime], Iterator[tuple[Any, ...]]
] = schema.define_row_builder(
    "_priced_rows",
    _PRICED_ROWS,
    FIELDS,
    sets=(
        "tenant_id", "api_key_id", "batch_id", "received_at", "team_id", "timestamp", "hour",
        "cost_usd", "cost_source",
    ),
    row=lambda values: ", ".join(value for _, value in values) + ",",
    namespace=globals(),
)  # fmt: skip


def store_events(
    key: ApiKey, events: list[tuple[ValidEvent, int | None]], now: datetime, rejected: int = 0
) -> int:
    """Price and store the events (`store_priced`); returns how many were new."""
    return store_priced(key, price_events(key, events), now, rejected)[0]


def price_events(key: ApiKey, events: list[tuple[ValidEvent, int | None]]) -> list[Priced]:
    """The events priced for the key's tenant, as `store_priced` takes them."""
    return list(_priced(pricer_for(key.tenant), events))


Refused = list[tuple[ValidEvent, dict[str, list[str]]]]


def store_priced(
    key: ApiKey, priced: list[Priced], now: datetime, rejected: int = 0
) -> tuple[int, Refused]:
    """Insert the events and their pending batch in one transaction; returns how many were new,
    and the events the database refused (with their errors), if any.

    A repeated (tenant, event_id) is skipped by the idempotency keys' primary key, also when two requests
    race, so a duplicate is never stored or counted twice. The batch row also carries how many
    events were offered and rejected, so ingest counters survive restarts via the rollups.
    A few events may share that transaction and batch row with concurrent requests of the
    same tenant in this process (group commit, `_insert_grouped`); the count returned is
    still this request's own.

    Rows are written in one order, by event id, whoever writes them (COPY, grouped INSERT, one
    by one): two batches sharing ids then wait for each other instead of deadlocking. A
    deadlock or serialization failure that happens anyway is retried (`_retrying`). If the
    database refuses the batch for something other than an outage, its events are written
    one by one, and only those it refuses are rejected.
    """
    priced.sort(key=_event_id_of)
    partitions.ensure_for(p[2] for p in priced)  # a late or back-dated month: made now
    inserted, refused = _store(key, priced, now, rejected)
    transaction.on_commit(lambda: events_stored.send(UsageEvent, tenant_id=key.tenant_id))
    return inserted, refused


def _event_id_of(p: Priced) -> str:
    return p[0].event_id


def _store(key: ApiKey, priced: list[Priced], now: datetime, rejected: int) -> tuple[int, Refused]:
    try:
        if len(priced) >= COPY_MIN_EVENTS:
            try:
                return _retrying(lambda: _copy(key, priced, now, rejected)), []
            except DatabaseError as exc:
                if is_storage_outage(exc):
                    raise
                # An event id already stored (a client's retry) or repeated in the batch, or a
                # row the database refused: the grouped INSERT, then one by one, sort it out.
        return _insert_grouped(key, priced, now, rejected), []
    except DatabaseError as exc:
        if is_storage_outage(exc):
            raise
        log.warning("ingest: batch refused (%s); storing its events one by one", exc)
        return _retrying(lambda: _insert_one_by_one(key, priced, now, rejected))


# A deadlock (40P01) or serialization failure (40001) is retried this many times in all, after
# a short random wait: a client should not see, nor retry, a conflict the server can resolve.
ATTEMPTS = 4
BACKOFF_SECONDS = 0.01


def _retrying(write: Callable[[], Any]) -> Any:
    """`write()`, again after a deadlock or serialization failure (outside a caller's
    transaction, which such an error has aborted)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return write()
        except DatabaseError as exc:
            if attempt == ATTEMPTS or not is_transient_conflict(exc) or connection.in_atomic_block:
                raise
            log.info("ingest: %s; retrying (attempt %d)", exc, attempt + 1)
            time.sleep(random.uniform(0.5, 1.5) * BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable")  # the last attempt returns or raises


# From this many events COPY's extra round trips (BEGIN, batch row, COPY, COMMIT instead of
# one statement) cost less than what it saves the database per row.
COPY_MIN_EVENTS = 10
PG_BATCH = (
    f"INSERT INTO {PendingBatch._meta.db_table} (tenant_id, created_at, offered, rejected) "  # noqa: S608 - constants only
    "VALUES (%b::bigint, %b::timestamptz, %b::int, %b::int) RETURNING id"
)
PG_COPY = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
# The idempotency keys first: a repeated id fails the COPY there, before any event row.
PG_COPY_KEYS = f"COPY {partitions.KEYS} (tenant_id, event_id) FROM STDIN (FORMAT BINARY)"
KEY_TYPES = ["bigint", "text"]
COPY_TYPES = [{"int": "integer"}.get(t, t) for t in PG_TYPES]


class TagsDumper(JsonbBinaryDumper):
    """The tags column in binary COPY (jsonb's format: a version byte, then JSON text).

    psycopg's own dumper calls json.dumps through two Python methods per row, even for {},
    which nearly every event has: ~1.4 µs a row. A constant for {}; otherwise the same JSON
    as json.dumps, from the C encoder it uses."""

    def dump(self, obj: Any) -> Buffer | None:
        if type(obj) is not dict:
            return super().dump(obj)  # say a Jsonb wrapper: as psycopg would
        return b"\x01" + _encode_json(obj).encode() if obj else EMPTY_JSONB


EMPTY_JSONB = b"\x01{}"
_encode_json = json.JSONEncoder().encode  # what json.dumps(obj) calls, without its kwargs


def _copy(key: ApiKey, events: list[Priced], now: datetime, rejected: int) -> int:
    """The batch row and its events by COPY in one transaction: the database's cost per row is
    about a third of INSERT ... ON CONFLICT's (bulk heap inserts, no speculative insertion).
    COPY is all or nothing, so an event id that exists already fails the keys' COPY with
    IntegrityError (`partitions.KEYS`' primary key), rolling everything back (also when another request's copy of it commits first)."""
    with transaction.atomic():
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.adapters.register_dumper(None, TagsDumper)  # this cursor's COPY only
            cursor.execute(
                PG_BATCH, [key.tenant_id, now, len(events), rejected], prepare=pooling.prepare()
            )
            batch = cursor.fetchone()
            assert batch is not None  # INSERT ... RETURNING returns the row it inserted
            with cursor.copy(PG_COPY_KEYS) as copy:
                copy.set_types(KEY_TYPES)
                for p in events:
                    copy.write_row((key.tenant_id, p[0].event_id))
            rows = _priced_rows(key, batch[0], events, now)
            with cursor.copy(PG_COPY) as copy:
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
    return len(events)


# Columns the grouped INSERT fills itself, with their SQL: the pending batch's id and tenant
# are the group's, the hour is computed by the database. The rest come per event, from JSON
# objects (`_event_rows`); the key and the time received too, as a group holds several requests.
BY_THE_STATEMENT = {
    "batch_id": "batch.id",
    "tenant_id": "%(tenant)b::bigint",
    "hour": "date_trunc('hour', e.timestamp, 'UTC')",
}
PER_EVENT = tuple(f for f in FIELDS if f.column not in BY_THE_STATEMENT)
# Per event: its JSON key and SQL type.
PG_EVENT_COLUMNS = tuple((f.column, f.pg_type) for f in PER_EVENT)
_PG_EVENT_NAMES = ", ".join(name for name, _ in PG_EVENT_COLUMNS)
# The batch row first, then the events with its id, from one JSON array of event objects:
# one text parameter whatever the number of events. Binary parameters cost psycopg ~4 µs
# each in Python (21 per event, or 21 arrays), json.dumps a few µs per event. Amounts and
# times go as strings, read by numeric's and timestamptz's own input: exact. RETURNING names
# the new events, so each request of a group learns which of its own were new.
# The events as rows of a record set, and the new ones among them: those whose idempotency
# key (`partitions.KEYS`) this statement inserted. Data-modifying CTEs see each other's
# RETURNING, so key and event are written by one statement, atomic on its own.
_RECORDSET = (
    "json_to_recordset(%(events)s::json) AS e("
    + ", ".join(f"{name} {pg_type}" for name, pg_type in PG_EVENT_COLUMNS)
    + ")"
)
_NEW_KEYS = (
    f"new AS (INSERT INTO {partitions.KEYS} (tenant_id, event_id) "  # noqa: S608 - constants only
    f"SELECT %(tenant)b::bigint, e.event_id FROM {_RECORDSET} "
    "ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING event_id)"
)
PG_STORE = (
    f"WITH batch AS (INSERT INTO {PendingBatch._meta.db_table} "  # noqa: S608 - constants only
    "(tenant_id, created_at, offered, rejected) "
    "VALUES (%(tenant)b::bigint, %(created)b::timestamptz, %(offered)b::int, %(rejected)b::int) "
    f"RETURNING id), {_NEW_KEYS} "
    f"INSERT INTO {TABLE} ({', '.join(BY_THE_STATEMENT)}, {_PG_EVENT_NAMES}) "
    f"SELECT {', '.join(BY_THE_STATEMENT.values())}, e.* "
    f"FROM batch, {_RECORDSET} WHERE e.event_id IN (SELECT event_id FROM new) "
    "RETURNING event_id"
)


@dataclass(frozen=True)
class Share:
    """One request's part of a group write: its priced events (JSON-ready, PG_EVENT_COLUMNS'
    keys), how many of its events were rejected, and when it was received."""

    rows: list[dict[str, Any]]
    rejected: int
    received_at: datetime


def _insert_grouped(key: ApiKey, events: list[Priced], now: datetime, rejected: int) -> int:
    """A few events: written with those of the process's concurrent requests for the same
    tenant (group commit), unless in a transaction of the caller's, which must own them."""
    share = Share(_event_rows(key, events, now), rejected, now)
    if connection.in_atomic_block:
        with transaction.atomic():  # a savepoint: a refused statement leaves the caller's own
            return write_group(key.tenant_id, [share])[0]
    if len(events) >= COPY_MIN_EVENTS:
        return _retrying(lambda: write_group(key.tenant_id, [share]))[0]  # type: ignore[no-any-return]
    return _groups.run(key.tenant_id, share)


# One event with a given pending batch: `_insert_one_by_one`'s statement.
PG_STORE_ONE = (
    f"WITH {_NEW_KEYS} "  # noqa: S608 - constants only
    f"INSERT INTO {TABLE} (batch_id, tenant_id, hour, {_PG_EVENT_NAMES}) "
    "SELECT %(batch)b::bigint, %(tenant)b::bigint, date_trunc('hour', e.timestamp, 'UTC'), e.* "
    f"FROM {_RECORDSET} WHERE e.event_id IN (SELECT event_id FROM new) RETURNING event_id"
)
PG_REFUSED = (
    f"UPDATE {PendingBatch._meta.db_table} "  # noqa: S608 - constants only
    "SET offered = offered - %(n)b::int, rejected = rejected + %(n)b::int WHERE id = %(batch)b::bigint"
)


def _insert_one_by_one(
    key: ApiKey, priced: list[Priced], now: datetime, rejected: int
) -> tuple[int, Refused]:
    """The batch row, then each event in a savepoint of its own, in one transaction: an event
    the database refuses is left out and counted rejected, the others are stored."""
    rows = _event_rows(key, priced, now)
    inserted, refused = 0, []
    with transaction.atomic():
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(PG_BATCH, [key.tenant_id, now, len(priced), rejected])
            batch = cursor.fetchone()
            assert batch is not None  # INSERT ... RETURNING returns the row it inserted
        for p, row in zip(priced, rows, strict=True):
            params = {"batch": batch[0], "tenant": key.tenant_id, "events": _encode_json([row])}
            try:
                with (
                    transaction.atomic(),
                    connection.wrap_database_errors,
                    psycopg.Cursor(connection.connection) as cursor,
                ):
                    cursor.execute(PG_STORE_ONE, params)
                    inserted += len(cursor.fetchall())
            except DatabaseError as exc:
                if is_storage_outage(exc) or is_transient_conflict(exc):
                    raise
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                refused.append((p[0], {"non_field_errors": [f"refused by the database: {reason}"]}))
        if refused:
            with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
                cursor.execute(PG_REFUSED, {"n": len(refused), "batch": batch[0]})
    return inserted, refused


def write_group(tenant_id: int, shares: list[Share]) -> list[int]:
    """One pending batch row (the shares' sums) and every share's events in one prepared
    statement, atomic on its own; per share, how many of its events were new.

    An event id already stored is skipped by the unique constraint, also when another process
    races. One repeated within the group is sent once, by its first share: the later copies
    are duplicates whatever happens to the first, so every count is exact."""
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    sent: list[list[str]] = []  # per share, the event ids it sent
    for share in shares:
        ids = []
        for row in share.rows:
            if row["event_id"] not in seen:
                seen.add(row["event_id"])
                rows.append(row)
                ids.append(row["event_id"])
        sent.append(ids)
    if len(shares) > 1:
        rows.sort(key=_ROW_EVENT_ID)  # one order for every writer (each share's is sorted)
    params = {
        "tenant": tenant_id,
        "created": min(share.received_at for share in shares),
        "offered": sum(len(share.rows) for share in shares),
        "rejected": sum(share.rejected for share in shares),
        "events": _encode_json(rows),
    }
    connection.ensure_connection()
    # Wrapped, so a lost database still surfaces as Django's OperationalError (a 503). A plain
    # psycopg Cursor: the connection's default (Django's) is a ClientCursor, which would quote
    # the parameters into SQL text instead of sending them apart, to a prepared statement.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(PG_STORE, params, prepare=pooling.prepare())
        new = {event_id for (event_id,) in cursor.fetchall()}
    return [sum(1 for event_id in ids if event_id in new) for ids in sent]


def _write_groups(tenant_id: int, shares: list[Share]) -> list[int | Exception]:
    """`write_group`, except that one request's bad data (say a character PostgreSQL refuses)
    fails only that request: after such an error each share is written again on its own."""
    try:
        return list(_retrying(lambda: write_group(tenant_id, shares)))
    except DatabaseError as exc:
        if len(shares) == 1 or is_storage_outage(exc):
            raise
    results: list[int | Exception] = []
    for share in shares:
        try:
            results.append(_retrying(lambda: write_group(tenant_id, [share]))[0])  # noqa: B023
        except DatabaseError as exc:
            results.append(exc)
    return results


_groups: GroupCommit[int, Share, int] = GroupCommit(_write_groups)
_ROW_EVENT_ID = itemgetter("event_id")


# One priced, JSON-ready object per event (PG_EVENT_COLUMNS' keys): what json.dumps cannot
# write (times, Decimal) is converted here, as text that PostgreSQL reads exactly.
_EVENT_ROWS = """
def _event_rows(key, priced, now):
    api_key_id, received_at = key.pk, now.isoformat()
    rows = []
    for e, team_id, _, cost, cost_source in priced:
        # An event sent without a timestamp has `now` itself: its text is made already.
        timestamp = received_at if e.timestamp is now else e.timestamp.isoformat()
        client_cost_usd = None if e.cost_usd is None else str(e.cost_usd)
        cost_usd = str(cost)
        rows.append({row})
    return rows
"""
# Sent fields stored as the event holds them must be of a kind json.dumps writes as it is.
JSON_AS_IS = {Kind.ID, Kind.NAME, Kind.TEXT, Kind.COUNT, Kind.STATUS, Kind.DURATION, Kind.TAGS}


def _json_object(values: list[tuple[Field, str]]) -> str:
    for f, value in values:
        if value.startswith("e.") and f.kind not in JSON_AS_IS:
            raise ValueError(f"_event_rows must convert {f.name} ({f.kind.name}) for JSON")
    return "{" + ", ".join(f"{f.column!r}: {value}" for f, value in values) + "}"


_event_rows: Callable[[ApiKey, list[Priced], datetime], list[dict[str, Any]]] = (
    schema.define_row_builder(
    "_event_rows",
    _EVENT_ROWS,
    PER_EVENT,
    sets=(
        "api_key_id", "received_at", "team_id", "timestamp", "client_cost_usd", "cost_usd",
        "cost_source",
    ),
    row=_json_object,
    namespace=globals(),
))  # fmt: skip
