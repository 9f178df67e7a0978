"""One tenant's poison stalls nobody, with a real Celery worker: beat's sweep and the run after
ingest roll every other tenant (and the poisoned tenant's good batches) up within the
freshness target, and the poisoned batch is quarantined after its attempts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from costboard.celery import app as celery_app
from ingest.models import PendingBatch
from pipeline.debounce import clear_schedule
from rollups.services import MAX_ATTEMPTS
from rollups.tasks import roll_up_everything_pending
from tests.conftest import KeyHolder, World, event, post_json
from tests.rollups.helpers import assert_rollups_match_raw, settled_events
from tests.rollups.poison import batch, poisoned_batch
from tests.worker import celery_worker, wait_until

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]
FRESHNESS_SECONDS = 10


def _features(read: KeyHolder) -> set[str]:
    response = Client().get("/api/v1/usage?group_by=feature", **read.auth)
    assert response.status_code == 200
    return {row["feature"] for row in response.json()["rows"]}


def _visible(read: KeyHolder, *features: str) -> float:
    """Seconds until every feature shows in /api/v1/usage (asserted within the target)."""
    started = time.monotonic()
    wait_until(lambda: set(features) <= _features(read), timeout=FRESHNESS_SECONDS, every=0.1)
    return time.monotonic() - started


def _failures(batch_id: int) -> int:
    return PendingBatch.unscoped_all_tenants.get(pk=batch_id).failures


def _command(*args: str) -> str:
    out = StringIO()
    call_command("rollup_quarantine", *args, stdout=out)
    return out.getvalue()


def test_it_rolls_up_everyone_else_while_one_tenants_batch_is_poisoned(world: World) -> None:
    # Before any worker runs: the poisoned tenant (swept first) and another tenant's batch.
    batch(world.ingest, "before")
    bad = poisoned_batch(world.ingest, "bad")
    batch(world.ingest, "after")
    batch(world.other_ingest, "theirs")
    celery_app.control.purge()  # only beat's sweep rolls these up; new ingest schedules again
    for tenant in (world.tenant, world.other_tenant):
        clear_schedule(tenant.pk)

    with celery_worker():
        roll_up_everything_pending.delay()
        _visible(world.other_read, "theirs")
        _visible(world.read, "before", "after")
        wait_until(lambda: _failures(bad) == 1, timeout=FRESHNESS_SECONDS)

        # New events of both tenants over the API: the run after ingest isolates the poison too.
        now = datetime.now(UTC).isoformat()
        for holder, tag in ((world.ingest, "fresh"), (world.other_ingest, "also")):
            body = {"events": [event(f"{tag}-{i}", feature=tag, timestamp=now) for i in range(5)]}
            assert post_json(Client(), "/api/v1/events", body, holder).status_code == 202
        _visible(world.other_read, "also")
        _visible(world.read, "fresh")

        # Sweeps until the poison is quarantined; then no run tries it again.
        def quarantined() -> bool:
            roll_up_everything_pending.delay()
            return PendingBatch.unscoped_all_tenants.get(pk=bad).quarantined_at is not None

        wait_until(quarantined, timeout=30, every=1)
        assert _failures(bad) == MAX_ATTEMPTS

    assert "rollups: tenant acme: 1 batch(es) quarantined" in str(Client().get("/readyz").json())
    assert not PendingBatch.objects.for_tenant(world.other_tenant).exists()
    assert list(PendingBatch.objects.for_tenant(world.tenant).values_list("pk", flat=True)) == [bad]
    assert_rollups_match_raw(world.other_tenant)
    assert_rollups_match_raw(world.tenant, settled_events(world.tenant))

    assert f"batch {bad}  tenant acme  3 events" in _command("list")
    assert "refused again (1 of 3 attempts before quarantine)" in _command("retry", str(bad))
    for _ in range(MAX_ATTEMPTS - 1):
        call_command("rollup", "--tenant", "acme", stdout=StringIO())
    assert f"batch {bad} dropped with its 3 events" in _command("drop", str(bad))
    assert _command("list") == "no quarantined batches\n"
    assert Client().get("/readyz").json()["status"] == "ok"
    assert_rollups_match_raw(world.tenant)
