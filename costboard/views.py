from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

from core import replica
from costboard.celery import app as celery_app
from rollups import health as rollup_health
from rollups.services import rollup_lag_seconds


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means "not ready"
        return f"database: {exc.__class__.__name__}"
    return None


def _check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"broker: {exc.__class__.__name__}"
    return None


def readyz(request: HttpRequest) -> JsonResponse:
    """503 when this process cannot serve (database or broker down); otherwise 200, with
    "degraded" and the problems when some tenant's rollups need an operator (a failing run,
    quarantined batches): one tenant's data must not take every tenant's service away."""
    problems = [p for p in (_check_database(), _check_broker()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    body: dict[str, object] = {"status": "ok"}
    found = rollup_health.problems()
    extra: dict[str, object] = {"rollup_lag_seconds": round(rollup_lag_seconds(), 3)}
    if replica.configured():
        state = replica.state()
        extra |= _replica_fields(state)
        found += (
            [] if state.usable else [f"replica: {_replica_problem(state)}; reading the primary"]
        )
    if found:
        body = {"status": "degraded", "problems": found}
    return JsonResponse({**body, **extra})


def _replica_fields(state: replica.ReplicaState) -> dict[str, object]:
    lag = state.lag_seconds
    return {
        "replica_lag_seconds": None if lag is None else round(lag, 3),
        "replica_in_use": state.usable,
    }


def _replica_problem(state: replica.ReplicaState) -> str:
    # Pages still work on the primary: a replica problem degrades, it does not take us down.
    if not state.reachable:
        return "unreachable"
    if state.lag_seconds is None:
        return "lag unknown (not in recovery, or nothing replayed yet)"
    return f"{state.lag_seconds:.0f} s behind, over REPLICA_MAX_LAG_SECONDS"
