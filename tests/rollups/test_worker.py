"""Rollups by a real Celery worker on Redis (PostgreSQL only: the worker is another process)."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client

from ingest.models import PendingBatch
from ingest.services import ingest_events
from pipeline.tasks import roll_up_tenant
from rollups.models import HourlyRollup
from tests.conftest import World, event, post_json
from tests.rollups.helpers import assert_rollups_match_raw
from tests.worker import celery_worker, kill, start_worker, wait_until

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _usage_cost(world: World, feature: str) -> str | None:
    response = Client().get("/api/v1/usage?group_by=feature", **world.read.auth)
    rows = [r for r in response.json()["rows"] if r["feature"] == feature]
    return rows[0]["cost_usd"] if rows else None


def test_it_rolls_up_posted_events_within_seconds(world: World) -> None:
    now = datetime.now(UTC).isoformat()
    batch = [event(i, feature="smart-reply", timestamp=now) for i in range(50)]
    with celery_worker():
        started = time.monotonic()
        response = post_json(Client(), "/api/v1/events", {"events": batch}, world.ingest)
        assert response.status_code == 202
        cost = wait_until(lambda: _usage_cost(world, "smart-reply"), timeout=30)
        took = time.monotonic() - started
    assert took < 15
    rollup = HourlyRollup.objects.for_tenant(world.tenant).get(feature="smart-reply")
    assert rollup.requests == 50 and str(rollup.cost_usd) == cost
    other = Client().get("/api/v1/usage?group_by=feature", **world.other_read.auth).json()
    assert other["rows"] == []


def test_it_loses_and_doubles_nothing_when_the_worker_is_killed_mid_run(world: World) -> None:
    now = datetime.now(UTC).isoformat()
    for b in range(300):
        batch = [
            event(f"{b}-{i}", feature=f"f{i % 7}", user_id=f"u{i % 13}", timestamp=now)
            for i in range(40)
        ]
        ingest_events(world.ingest.key, batch)
    pending_before = PendingBatch.objects.for_tenant(world.tenant).count()
    worker = start_worker()
    try:
        roll_up_tenant.apply_async((world.tenant.pk,))
        # Kill the worker while its rollup transaction holds the tenant's lock: mid-run.
        wait_until(_rollup_in_progress, timeout=60, every=0.005)
    finally:
        kill(worker, signal.SIGKILL)
    wait_until(lambda: not _rollup_in_progress(), timeout=30)
    # The killed run left nothing half-done: no rollups, every batch still pending.
    assert not HourlyRollup.objects.for_tenant(world.tenant).exists()
    assert PendingBatch.objects.for_tenant(world.tenant).count() == pending_before
    with celery_worker():
        roll_up_tenant.apply_async((world.tenant.pk,))
        wait_until(lambda: not PendingBatch.objects.for_tenant(world.tenant).exists(), timeout=120)
    assert_rollups_match_raw(world.tenant)


def _rollup_in_progress() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
        return cursor.fetchone()[0] > 0
