"""Ingest writes: validate, price and store a batch of usage events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ingest.models import PendingBatch, UsageEvent
from ingest.validation import ValidEvent, validate_event
from pricing.catalog import TokenCounts
from pricing.resolver import TenantPricer, pricer_for
from tenants.models import ApiKey
from tenants.selectors import team_ids_by_slug

COLUMNS = (
    "tenant_id", "batch_id", "event_id", "timestamp", "hour", "received_at", "team_id",
    "api_key_id", "provider", "model", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "feature", "endpoint", "user_id", "environment", "latency_ms",
    "status_code", "client_cost_usd", "cost_usd", "cost_source", "tags",
)  # fmt: skip
PG_TYPES = (
    "bigint", "bigint", "text", "timestamptz", "timestamptz", "timestamptz", "bigint", "bigint",
    "text", "text", "bigint", "bigint", "bigint", "bigint", "text", "text", "text", "text",
    "float8", "int", "numeric", "numeric", "text", "jsonb",
)  # fmt: skip
TABLE = UsageEvent._meta.db_table


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def ingest_events(key: ApiKey, raw_events: list[Any]) -> IngestResult:
    """Validate, price and store a batch; valid events are durable when this returns."""
    now = timezone.now()
    result = IngestResult()
    valid = _validate_batch(key, raw_events, now, result)
    if valid or result.rejected:
        result.accepted = store_events(key, valid, now, rejected=len(result.rejected))
        result.duplicates = len(valid) - result.accepted
    return result


def _validate_batch(
    key: ApiKey, raw_events: list[Any], now: datetime, result: IngestResult
) -> list[tuple[ValidEvent, int | None]]:
    valid: list[tuple[ValidEvent, int | None]] = []
    teams: dict[str, int] = {}
    for index, raw in enumerate(raw_events):
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


def _hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _rows(
    key: ApiKey, batch_id: int, events: list[tuple[ValidEvent, int | None]], now: datetime
) -> Iterator[tuple[Any, ...]]:
    """One tuple per event, in the order of COLUMNS, priced; tags as a dict (COPY's jsonb).

    The pricer is looked up now, not when the first row is taken: that may query the
    database, which cannot answer a query in the middle of a COPY."""
    return _priced_rows(pricer_for(key.tenant), key, batch_id, events, now)


def _priced_rows(
    pricer: TenantPricer,
    key: ApiKey,
    batch_id: int,
    events: list[tuple[ValidEvent, int | None]],
    now: datetime,
) -> Iterator[tuple[Any, ...]]:
    price = pricer.price
    tenant_id, key_id = key.tenant_id, key.pk
    for e, team_id in events:
        tokens = TokenCounts(
            e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens
        )
        cost, source = price(e.provider, e.model, tokens, e.timestamp, e.cost_usd)
        yield (
            tenant_id, batch_id, e.event_id, e.timestamp, _hour(e.timestamp), now, team_id,
            key_id, e.provider, e.model, e.input_tokens, e.output_tokens, e.cache_read_tokens,
            e.cache_write_tokens, e.feature, e.endpoint, e.user_id, e.environment, e.latency_ms,
            e.status_code, e.cost_usd, cost, str(source), e.tags,
        )  # fmt: skip


def store_events(
    key: ApiKey, events: list[tuple[ValidEvent, int | None]], now: datetime, rejected: int = 0
) -> int:
    """Insert the events and their pending batch in one transaction; returns how many were new.

    A repeated (tenant, event_id) is skipped by the unique constraint, also when two requests
    race, so a duplicate is never stored or counted twice. The batch row also carries how many
    events were offered and rejected, so ingest counters survive restarts via the rollups.
    """
    from rollups.scheduling import schedule_rollup

    if connection.vendor == "postgresql" and events:
        inserted = _store_postgres(key, events, now, rejected)
        transaction.on_commit(lambda: schedule_rollup(key.tenant_id))
        return inserted
    with transaction.atomic():
        batch = PendingBatch.objects.create(
            tenant_id=key.tenant_id, created_at=now, offered=len(events), rejected=rejected
        )
        inserted = _insert_values(list(_rows(key, batch.pk, events, now))) if events else 0
        transaction.on_commit(lambda: schedule_rollup(key.tenant_id))
    return inserted


def _store_postgres(
    key: ApiKey, events: list[tuple[ValidEvent, int | None]], now: datetime, rejected: int
) -> int:
    if len(events) >= COPY_MIN_EVENTS:
        try:
            return _copy_postgres(key, events, now, rejected)
        except IntegrityError:
            pass  # an event id already stored (a client's retry) or repeated in the batch
    return _insert_postgres(key, events, now, rejected)


# From this many events COPY's extra round trips (BEGIN, batch row, COPY, COMMIT instead of
# one statement) cost less than what it saves the database per row.
COPY_MIN_EVENTS = 10
PG_BATCH = (
    f"INSERT INTO {PendingBatch._meta.db_table} (tenant_id, created_at, offered, rejected) "  # noqa: S608 - constants only
    "VALUES (%b::bigint, %b::timestamptz, %b::int, %b::int) RETURNING id"
)
PG_COPY = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
COPY_TYPES = [{"int": "integer"}.get(t, t) for t in PG_TYPES]


def _copy_postgres(
    key: ApiKey, events: list[tuple[ValidEvent, int | None]], now: datetime, rejected: int
) -> int:
    """The batch row and its events by COPY in one transaction: the database's cost per row is
    about a third of INSERT ... ON CONFLICT's (bulk heap inserts, no speculative insertion).
    COPY is all or nothing, so an event id that exists already fails it with IntegrityError,
    rolling everything back (also when another request's copy of it commits first)."""
    with transaction.atomic():
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(PG_BATCH, [key.tenant_id, now, len(events), rejected], prepare=True)
            batch = cursor.fetchone()
            assert batch is not None  # INSERT ... RETURNING returns the row it inserted
            rows = _rows(key, batch[0], events, now)  # before COPY: it may query
            with cursor.copy(PG_COPY) as copy:
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
    return len(events)


# Per event; the batch's own values (batch id, tenant, key, time received) and the hour
# (computed by the database) are not repeated in every row.
PG_EVENT_COLUMNS = (
    ("event_id", "text"), ("timestamp", "timestamptz"), ("team_id", "bigint"),
    ("provider", "text"), ("model", "text"), ("input_tokens", "bigint"),
    ("output_tokens", "bigint"), ("cache_read_tokens", "bigint"),
    ("cache_write_tokens", "bigint"), ("feature", "text"), ("endpoint", "text"),
    ("user_id", "text"), ("environment", "text"), ("latency_ms", "float8"),
    ("status_code", "int"), ("client_cost_usd", "numeric"), ("cost_usd", "numeric"),
    ("cost_source", "text"), ("tags", "jsonb"),
)  # fmt: skip
# The batch row first, then the events with its id and the batch's own values.
_PG_STORE_HEAD = (
    f"WITH batch AS (INSERT INTO {PendingBatch._meta.db_table} "  # noqa: S608 - constants only
    "(tenant_id, created_at, offered, rejected) "
    "VALUES (%(tenant)b::bigint, %(now)b::timestamptz, %(offered)b::int, %(rejected)b::int) "
    "RETURNING id) "
    f"INSERT INTO {TABLE} (batch_id, tenant_id, api_key_id, received_at, hour, "
    f"{', '.join(name for name, _ in PG_EVENT_COLUMNS)}) "
    "SELECT batch.id, %(tenant)b::bigint, %(key)b::bigint, %(now)b::timestamptz, "
)
PG_STORE = (
    _PG_STORE_HEAD
    + "date_trunc('hour', e.timestamp, 'UTC'), e.* FROM batch, unnest("
    + ", ".join(f"%({name})b::{pg_type}[]" for name, pg_type in PG_EVENT_COLUMNS)
    + f") AS e({', '.join(name for name, _ in PG_EVENT_COLUMNS)}) "
    "ON CONFLICT (tenant_id, event_id) DO NOTHING"
)
# One event (what most calls of a client that does not batch send): plain parameters, far
# cheaper to send than nineteen one-element arrays.
PG_STORE_ONE = (
    _PG_STORE_HEAD
    + "date_trunc('hour', %(timestamp)b::timestamptz, 'UTC'), "
    + ", ".join(f"%({name})b::{pg_type}" for name, pg_type in PG_EVENT_COLUMNS)
    + " FROM batch ON CONFLICT (tenant_id, event_id) DO NOTHING"
)
NO_TAGS = "{}"


def _insert_postgres(
    key: ApiKey, events: list[tuple[ValidEvent, int | None]], now: datetime, rejected: int
) -> int:
    """The pending batch and all its events in one prepared statement, so one round trip and
    atomic on its own; a repeated event id is skipped, not an error. The columns go as binary
    array parameters."""
    columns = _pg_columns(key, events)
    single = len(events) == 1
    params = {
        "tenant": key.tenant_id,
        "key": key.pk,
        "now": now,
        "offered": len(events),
        "rejected": rejected,
        **({name: values[0] for name, values in columns.items()} if single else columns),
    }
    connection.ensure_connection()
    # Wrapped, so a lost database still surfaces as Django's OperationalError (a 503). A plain
    # psycopg Cursor: the connection's default (Django's) is a ClientCursor, which would quote
    # every array element into SQL text in Python instead of sending binary parameters.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(PG_STORE_ONE if single else PG_STORE, params, prepare=True)
        return cursor.rowcount


def _pg_columns(key: ApiKey, events: list[tuple[ValidEvent, int | None]]) -> dict[str, list[Any]]:
    """One list per column, built column by column: much cheaper than a tuple per row that is
    then transposed."""
    price = pricer_for(key.tenant).price
    costs, sources = [], []
    for e, _ in events:
        tokens = TokenCounts(
            e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens
        )
        cost, source = price(e.provider, e.model, tokens, e.timestamp, e.cost_usd)
        costs.append(cost)
        sources.append(source)
    valid = [e for e, _ in events]
    return {
        "event_id": [e.event_id for e in valid],
        "timestamp": [e.timestamp for e in valid],
        "team_id": [team_id for _, team_id in events],
        "provider": [e.provider for e in valid],
        "model": [e.model for e in valid],
        "input_tokens": [e.input_tokens for e in valid],
        "output_tokens": [e.output_tokens for e in valid],
        "cache_read_tokens": [e.cache_read_tokens for e in valid],
        "cache_write_tokens": [e.cache_write_tokens for e in valid],
        "feature": [e.feature for e in valid],
        "endpoint": [e.endpoint for e in valid],
        "user_id": [e.user_id for e in valid],
        "environment": [e.environment for e in valid],
        "latency_ms": [e.latency_ms for e in valid],
        "status_code": [e.status_code for e in valid],
        "client_cost_usd": [e.cost_usd for e in valid],
        "cost_usd": costs,
        "cost_source": [str(source) for source in sources],
        # Strings cast by the statement (text[] to jsonb[]): a dict has no array dumper.
        "tags": [json.dumps(e.tags) if e.tags else NO_TAGS for e in valid],
    }


def _insert_values(rows: list[tuple[Any, ...]], chunk: int = 400) -> int:
    inserted = 0
    placeholders = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            values = ", ".join([placeholders] * len(part))
            sql = (
                f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES {values} "  # noqa: S608
                "ON CONFLICT (tenant_id, event_id) DO NOTHING"
            )
            params = [_sqlite_value(v) for row in part for v in row]
            cursor.execute(sql, params)
            inserted += cursor.rowcount
    return inserted


def _sqlite_value(value: Any) -> Any:
    # Match what Django's own SQLite backend stores for these column types.
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value
