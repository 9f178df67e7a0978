"""Storage outages: a database that is down answers 503 with Retry-After, never 500."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
STORAGE_UNAVAILABLE = {"detail": "storage is unavailable, retry later"}


def storage_unavailable() -> JsonResponse:
    response = JsonResponse(STORAGE_UNAVAILABLE, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# PostgreSQL's deadlock_detected and serialization_failure: a conflict between transactions
# that one of them, retried, resolves. Not an outage: the database is up and answering.
TRANSIENT_CONFLICTS = frozenset({"40P01", "40001"})


def sqlstate(exception: BaseException) -> str | None:
    """The PostgreSQL error code behind `exception` (Django wraps psycopg's errors)."""
    seen: BaseException | None = exception
    while seen is not None:
        code = getattr(seen, "sqlstate", None)
        if code:
            return str(code)
        seen = seen.__cause__
    return None


def is_transient_conflict(exception: BaseException) -> bool:
    """A deadlock or serialization failure: retry the transaction."""
    return isinstance(exception, DatabaseError) and sqlstate(exception) in TRANSIENT_CONFLICTS


def is_storage_outage(exception: BaseException) -> bool:
    """A database that is down, unreachable or dropped the connection (not a bad query, and
    not a deadlock or serialization failure between transactions)."""
    if is_transient_conflict(exception):
        return False
    return isinstance(exception, OperationalError | InterfaceError) or (
        isinstance(exception, DatabaseError) and "connection" in str(exception).lower()
    )


class DatabaseUnavailableMiddleware:
    """A database that is down or unreachable answers 503 with Retry-After, never 500.

    Clients retry a 503; nothing they sent was accepted, so a retry cannot double count.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_storage_outage(exception):
            log.warning("database unavailable: %s", exception)
            return storage_unavailable()
        return None
