from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

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
    if rollup_problems := rollup_health.problems():
        body = {"status": "degraded", "problems": rollup_problems}
    return JsonResponse({**body, "rollup_lag_seconds": round(rollup_lag_seconds(), 3)})
