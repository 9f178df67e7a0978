"""Raw events in monthly partitions: made ahead and on demand, idempotent across months,
dropped whole by retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from ingest import partitions
from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from rollups.services import delete_expired_events, make_event_partitions, roll_up_all_pending
from tests.conftest import World, event
from tests.rollups.helpers import daily_total


def _stored(world: World) -> list[str]:
    events = UsageEvent.objects.for_tenant(world.tenant)
    return sorted(events.values_list("event_id", flat=True))


def _keys(world: World) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {partitions.KEYS} WHERE tenant_id = %s", [world.tenant.pk]
        )
        return int(cursor.fetchone()[0])


def test_it_makes_this_month_and_the_next_two_ahead(world: World) -> None:
    now = datetime.now(UTC)
    made = make_event_partitions()
    this = partitions.month_of(now)
    months = [this, partitions.next_month(this), partitions.next_month(partitions.next_month(this))]
    assert made == [partitions.name_of(m) for m in months]
    assert set(months) <= partitions.existing_months()


def test_it_stores_back_dated_events_of_a_month_without_a_partition(
    world: World, long_retention: None
) -> None:
    # March 2019 and April 2019 have no partition: one event alone (the grouped INSERT),
    # then a batch of 12 (COPY); neither is lost nor refused.
    assert {(2019, 3), (2019, 4)}.isdisjoint(partitions.existing_months())
    single = ingest_events(world.ingest.key, [event("march", timestamp="2019-03-10T12:00:00Z")])
    batch = [event(f"april-{i}", timestamp=f"2019-04-{i + 1:02d}T08:00:00Z") for i in range(12)]
    copied = ingest_events(world.ingest.key, batch)
    assert (single.accepted, single.rejected) == (1, [])
    assert (copied.accepted, copied.rejected) == (12, [])
    assert {(2019, 3), (2019, 4)} <= partitions.existing_months()
    assert len(_stored(world)) == 13


def test_it_never_counts_a_retry_twice_across_months(world: World, long_retention: None) -> None:
    # Sent with a timestamp of last year, retried without one (stored at arrival: another
    # month), and a batch of 10 retried with each event a month later: all duplicates.
    first = ingest_events(world.ingest.key, [event("a", timestamp="2025-02-03T04:05:06Z")])
    retry = {k: v for k, v in event("a").items() if k != "timestamp"}
    again = ingest_events(world.ingest.key, [retry])
    batch = [event(f"b{i}", timestamp=f"2025-05-{i + 1:02d}T00:00:00Z") for i in range(10)]
    later = [event(f"b{i}", timestamp=f"2025-06-{i + 1:02d}T00:00:00Z") for i in range(10)]
    stored = ingest_events(world.ingest.key, batch)
    retried = ingest_events(world.ingest.key, [*later, event("c")])
    assert (first.accepted, again.accepted, again.duplicates) == (1, 0, 1)
    assert (stored.accepted, retried.accepted, retried.duplicates) == (10, 1, 10)
    assert len(_stored(world)) == 12
    assert UsageEvent.objects.for_tenant(world.tenant).filter(timestamp__month=6).count() == 0
    # The other tenant may use the same ids.
    assert ingest_events(world.other_ingest.key, [event("a")]).accepted == 1


def test_it_drops_whole_months_past_the_retention_and_keeps_rollups(world: World) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=100)  # a month wholly before the cutoff (now - 30 days)
    boundary = now - timedelta(days=31)  # in the month holding the cutoff, or later
    ingest_events(world.ingest.key, [event(i, timestamp=old.isoformat()) for i in range(7)])
    ingest_events(world.ingest.key, [event("boundary", timestamp=boundary.isoformat())])
    ingest_events(world.ingest.key, [event("fresh")])
    roll_up_all_pending(world.tenant.pk)
    before = daily_total(world.tenant)
    dropped = delete_expired_events(retention_days=30)
    assert partitions.name_of(partitions.month_of(old)) in dropped
    assert partitions.month_of(old) not in partitions.existing_months()
    assert partitions.month_of(now) in partitions.existing_months()
    # The boundary month keeps its rows until it is wholly past: up to a month longer.
    assert _stored(world) == ["evt-boundary", "evt-fresh"]
    assert _keys(world) == 2  # the dropped month's idempotency keys went with it
    assert daily_total(world.tenant) == before


def test_it_keeps_a_month_holding_events_not_rolled_up_yet(world: World) -> None:
    old = datetime.now(UTC) - timedelta(days=100)
    ingest_events(world.ingest.key, [event(i, timestamp=old.isoformat()) for i in range(3)])
    assert PendingBatch.objects.for_tenant(world.tenant).exists()
    name = partitions.name_of(partitions.month_of(old))
    assert name not in delete_expired_events(retention_days=30)
    assert len(_stored(world)) == 3
    roll_up_all_pending(world.tenant.pk)
    assert name in delete_expired_events(retention_days=30)
    assert _stored(world) == []


def test_it_forgets_the_key_of_a_deleted_event(world: World) -> None:
    ingest_events(world.ingest.key, [event("gone")])
    UsageEvent.objects.for_tenant(world.tenant).delete()
    assert _keys(world) == 0
    assert ingest_events(world.ingest.key, [event("gone")]).accepted == 1


@pytest.mark.django_db(transaction=True)
def test_it_detaches_concurrently_outside_a_transaction(world: World) -> None:
    # As beat's task runs it: not in a transaction, so DETACH ... CONCURRENTLY, ingest goes on.
    old = datetime.now(UTC) - timedelta(days=100)
    ingest_events(world.ingest.key, [event(i, timestamp=old.isoformat()) for i in range(12)])
    roll_up_all_pending(world.tenant.pk)
    assert not connection.in_atomic_block
    assert partitions.name_of(partitions.month_of(old)) in delete_expired_events(retention_days=30)
    assert _stored(world) == [] and _keys(world) == 0
    assert ingest_events(world.ingest.key, [event("now")]).accepted == 1
