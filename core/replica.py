"""The optional read replica (`DATABASE_REPLICA_URL`): which reads may go to it, and when not.

Routing is opt-in, never global: a view that shows figures (dashboard and billing pages, the
usage API, CSV/FOCUS exports) runs inside `reads()`, and only then do its reads go to the
replica. Everything else (services, ingest, rollups, Celery, forms) reads the primary, so a
service sees its own writes. Even inside `reads()`:
- writes always go to the primary (the router never names the replica for a write), and so do
  `select_for_update`/`get_or_create` reads, which Django sends to the write database;
- reads inside a `transaction.atomic` block go to the primary, which holds that transaction;
- a browser that has just posted a form carries a short cookie that keeps its reads on the
  primary, so the page it is sent back to shows what it saved;
- a replica that is down, or that lags more than REPLICA_MAX_LAG_SECONDS, is not used.

Lag is measured without trusting the replica's clock alone: when the replica has replayed up to
the primary's current WAL position it is 0, otherwise it is the age of the last transaction it
replayed (on an idle primary that age overstates, never understates, the lag).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse

ALIAS = "replica"
FRESH_COOKIE = "costboard-fresh"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_reading: ContextVar[str | None] = ContextVar("costboard_replica_reading", default=None)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ReplicaState:
    configured: bool
    reachable: bool = False
    lag_seconds: float | None = None  # None: unknown (unreachable, or no transaction replayed)

    @property
    def usable(self) -> bool:
        return self.lag_seconds is not None and self.lag_seconds <= settings.REPLICA_MAX_LAG_SECONDS


_last: tuple[float, ReplicaState] | None = None


def configured() -> bool:
    return ALIAS in settings.DATABASES


def _measure() -> ReplicaState:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (primary_lsn,) = cursor.fetchone()
    try:
        with connections[ALIAS].cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= %s::pg_lsn,"
                " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())",
                [primary_lsn],
            )
            in_recovery, caught_up, age = cursor.fetchone()
    except Exception:  # any failure (refused, reset, timeout) means "do not use it now"
        _close()
        return ReplicaState(configured=True)
    if not in_recovery:  # promoted, or pointed at a primary by mistake: its lag is not known
        return ReplicaState(configured=True, reachable=True)
    lag = 0.0 if caught_up else (None if age is None else max(0.0, float(age)))
    return ReplicaState(configured=True, reachable=True, lag_seconds=lag)


def state() -> ReplicaState:
    """The replica's state, measured at most once per REPLICA_CHECK_SECONDS per process."""
    global _last
    if not configured():
        return ReplicaState(configured=False)
    now = time.monotonic()
    if _last is None or now - _last[0] >= settings.REPLICA_CHECK_SECONDS:
        _last = (now, _measure())
    return _last[1]


def reading() -> str:
    """The alias page, API and export reads should use now: the replica when it is usable."""
    if not configured() or not state().usable:
        return DEFAULT_DB_ALIAS
    if not _answers():  # it died since the last measurement: measure again next time
        global _last
        _last = None
        return DEFAULT_DB_ALIAS
    return ALIAS


def _answers() -> bool:
    # One round trip per page: a replica that stopped within REPLICA_CHECK_SECONDS must send
    # the page to the primary, not fail it.
    try:
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        _close()
        return False
    return True


def _close() -> None:
    # A broken connection must not be reused by the next read; closing it may fail too.
    with contextlib.suppress(Exception):
        connections[ALIAS].close()


@contextmanager
def reads() -> Iterator[str]:
    """Send this block's reads to `reading()` (the router applies it); yields the alias."""
    alias = reading()
    token = _reading.set(alias)
    try:
        yield alias
    finally:
        _reading.reset(token)


def _may_use_replica(request: HttpRequest) -> bool:
    return request.method in SAFE_METHODS and FRESH_COOKIE not in request.COOKIES


def streamed(request: HttpRequest, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A streamed response body read under `reads()`: it is iterated after the view returned."""
    if not _may_use_replica(request):
        yield from chunks
        return
    with reads():
        yield from chunks


def read_view(view: F) -> F:
    """Wrap a view whose reads may go to the replica: safe methods only, and not for a browser
    that has just posted (see `FreshAfterWriteMiddleware`)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not _may_use_replica(request):
            return view(request, *args, **kwargs)
        with reads():
            return view(request, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


class ReplicaRouter:
    """Names the replica only for reads inside `reads()` outside any transaction block."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        # Never None: Django would then follow the row's own database, the replica for a row
        # read there, outside any `reads()` block.
        alias = _reading.get()
        if alias is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return alias

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # one database: a row read from the replica is the primary's row

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db != ALIAS


class FreshAfterWriteMiddleware:
    """After a browser posts (a form save, an invoice run), its next pages read the primary for
    REPLICA_MAX_LAG_SECONDS, so they show what it just saved however far the replica trails."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if configured() and request.method not in SAFE_METHODS:
            response.set_cookie(
                FRESH_COOKIE, "1", max_age=settings.REPLICA_MAX_LAG_SECONDS, httponly=True,
                samesite="Lax", secure=request.is_secure(),
            )  # fmt: skip
        return response
