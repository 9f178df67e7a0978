"""A batch the database refuses to merge holds up no other batch and no other tenant: the
merge is bisected down to the refused batches, which are quarantined after their attempts."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from ingest.models import PendingBatch, UsageEvent
from rollups import health, services
from rollups.models import HourlyRollup
from rollups.tasks import roll_up_everything_pending
from tests import worker
from tests.conftest import World
from tests.rollups.helpers import assert_rollups_match_raw, settled_events
from tests.rollups.poison import HUGE_LATENCY_MS, batch, poison, poisoned_batch

pytestmark = pytest.mark.django_db


def _pending(world: World) -> set[int]:
    return set(PendingBatch.objects.for_tenant(world.tenant).values_list("pk", flat=True))


def test_it_merges_every_good_batch_around_a_poisoned_one(world: World) -> None:
    good = [batch(world.ingest, f"good{i}") for i in range(5)]
    bad = poisoned_batch(world.ingest, "bad")
    good += [batch(world.ingest, f"late{i}") for i in range(4)]

    assert services.roll_up_all_pending(world.tenant.pk) == 27

    assert _pending(world) == {bad}
    refused = PendingBatch.objects.for_tenant(world.tenant).get(pk=bad)
    assert refused.failures == 1 and refused.quarantined_at is None
    assert "out of range" in refused.last_error and refused.failed_at is not None
    assert_rollups_match_raw(world.tenant, settled_events(world.tenant))


def test_it_quarantines_a_batch_refused_on_every_attempt(world: World) -> None:
    bad = poisoned_batch(world.ingest, "bad")
    for attempt in range(1, services.MAX_ATTEMPTS + 1):
        batch(world.ingest, f"good{attempt}")
        services.roll_up_all_pending(world.tenant.pk)
        refused = PendingBatch.objects.for_tenant(world.tenant).get(pk=bad)
        assert refused.failures == attempt
    assert refused.quarantined_at is not None

    # Quarantined: no merge tries it again, and neither the lag nor the sweep counts it.
    batch(world.ingest, "after")
    services.roll_up_all_pending(world.tenant.pk)
    refused.refresh_from_db()
    assert refused.failures == services.MAX_ATTEMPTS
    assert _pending(world) == {bad}
    assert services.rollup_lag_seconds() == 0.0
    assert services.tenants_with_pending() == []
    assert health.quarantined_by_tenant() == {world.tenant.pk: 1}
    assert_rollups_match_raw(world.tenant, settled_events(world.tenant))


def test_it_merges_the_first_of_two_batches_that_overflow_only_together(world: World) -> None:
    first, second = batch(world.ingest, "a"), batch(world.ingest, "b")
    poison(first, latency_ms=HUGE_LATENCY_MS)
    poison(second, latency_ms=HUGE_LATENCY_MS)

    services.roll_up_all_pending(world.tenant.pk)

    assert _pending(world) == {second}
    assert "out of range" in PendingBatch.objects.for_tenant(world.tenant).get().last_error
    assert_rollups_match_raw(world.tenant, settled_events(world.tenant))


def test_it_rolls_up_every_other_tenant_when_one_tenants_run_fails(world: World) -> None:
    poisoned_batch(world.ingest, "bad")
    batch(world.ingest, "good")
    batch(world.other_ingest, "theirs")
    # The poisoned tenant's run fails outright: another connection holds its rollup lock.
    with _rollup_lock_held(world.tenant.pk), _lock_timeout("300ms"):
        assert roll_up_everything_pending() == 3

    assert not PendingBatch.objects.for_tenant(world.other_tenant).exists()
    assert_rollups_match_raw(world.other_tenant)
    failing = health.failing_tenants()
    assert list(failing) == [world.tenant.pk] and "lock timeout" in failing[world.tenant.pk]
    assert health.failures_by_tenant() == {world.tenant.pk: 1}
    assert any("tenant acme: last run failed" in p for p in health.problems())

    # The next sweep rolls the tenant's good batch up and blames only the poisoned one.
    assert roll_up_everything_pending() == 3
    assert health.failing_tenants() == {}
    assert health.failures_by_tenant() == {world.tenant.pk: 2}
    assert HourlyRollup.objects.for_tenant(world.tenant).get().feature == "good"
    assert_rollups_match_raw(world.tenant, settled_events(world.tenant))


def test_it_names_quarantined_batches_in_readyz_without_taking_the_service_down(
    world: World,
) -> None:
    _quarantine(world, poisoned_batch(world.ingest, "bad"))

    response = Client().get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["problems"] == [
        "rollups: tenant acme: 1 batch(es) quarantined (manage.py rollup_quarantine list)"
    ]


def test_it_lists_retries_and_drops_quarantined_batches(world: World) -> None:
    bad = poisoned_batch(world.ingest, "bad")
    other_bad = poisoned_batch(world.other_ingest, "theirs")
    for _ in range(services.MAX_ATTEMPTS):
        services.roll_up_all_pending(world.tenant.pk)
        services.roll_up_all_pending(world.other_tenant.pk)

    listed = _command("--tenant", "acme", "list")
    assert f"batch {bad}  tenant acme  3 events" in listed and "out of range" in listed
    assert str(other_bad) not in listed and "1 quarantined batch(es)" in listed

    # Retry: back to pending, refused again at once (the poison is still there).
    retried = _command("retry", str(bad))
    assert "refused again (1 of 3 attempts before quarantine)" in retried
    assert health.quarantined_by_tenant() == {world.other_tenant.pk: 1}

    # Once the cause is gone (here: the event mended), a retry rolls it up.
    UsageEvent.objects.for_tenant(world.other_tenant).filter(batch_id=other_bad).update(
        input_tokens=10, output_tokens=10
    )
    assert f"batch {other_bad} rolled up" in _command("retry", str(other_bad))
    assert_rollups_match_raw(world.other_tenant)

    # Drop: the batch and its events go; the rollups still equal the remaining events.
    for _ in range(services.MAX_ATTEMPTS):
        services.roll_up_all_pending(world.tenant.pk)
    assert f"batch {bad} dropped with its 3 events" in _command("drop", str(bad))
    assert not UsageEvent.objects.for_tenant(world.tenant).filter(batch_id=bad).exists()
    assert _command("list") == "no quarantined batches\n"
    assert_rollups_match_raw(world.tenant)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retry"], "retry needs a batch id"),
        (["drop", "x1"], "a batch id is a positive whole number"),
        (["drop", "999999"], "no quarantined batch 999999"),
        (["retry", str(2**63)], "a batch id is a positive whole number"),
        (["retry", "0"], "a batch id is a positive whole number"),
        (["--tenant", "nope", "list"], "tenant 'nope' does not exist"),
        (["list", "3"], "list takes no batch id"),
    ],
)
def test_it_refuses_bad_input_to_the_quarantine_command(
    world: World, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        _command(*args)


def test_it_will_not_retry_another_tenants_batch(world: World) -> None:
    theirs = poisoned_batch(world.other_ingest, "theirs")
    _quarantine_other(world, theirs)
    with pytest.raises(CommandError, match=f"no quarantined batch {theirs} of tenant 'acme'"):
        _command("--tenant", "acme", "drop", str(theirs))
    assert PendingBatch.objects.for_tenant(world.other_tenant).filter(pk=theirs).exists()


def _quarantine(world: World, batch_id: int) -> None:
    for _ in range(services.MAX_ATTEMPTS):
        services.roll_up_all_pending(world.tenant.pk)
    assert PendingBatch.objects.for_tenant(world.tenant).get(pk=batch_id).quarantined_at


def _quarantine_other(world: World, batch_id: int) -> None:
    for _ in range(services.MAX_ATTEMPTS):
        services.roll_up_all_pending(world.other_tenant.pk)
    assert PendingBatch.objects.for_tenant(world.other_tenant).get(pk=batch_id).quarantined_at


def _command(*args: str) -> str:
    out = StringIO()
    call_command("rollup_quarantine", *args, stdout=out)
    return out.getvalue()


@contextmanager
def _rollup_lock_held(tenant_id: int) -> Iterator[None]:
    """Another connection holds the tenant's rollup lock (as a long run would)."""
    key = zlib.crc32(f"costboard-rollup-{tenant_id}".encode())
    with psycopg.connect(worker.test_database_url(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [key])
        yield


@contextmanager
def _lock_timeout(value: str) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{value}'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
