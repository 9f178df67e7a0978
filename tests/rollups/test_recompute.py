"""`rollup --since`: the rollups rebuilt from the raw events by the same merge as every run,
while other batches are still pending (they are added by their own merge, once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum

from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from pricing.services import set_price_override
from rollups import services, sql
from rollups.models import (
    ConsumerWindow,
    ConsumerWindowRollup,
    DailyRollup,
    DailySlice,
    HourlyRollup,
    HourlySlice,
    IngestCount,
    LifetimeRollup,
)
from rollups.windows import standard_windows
from tenants.models import Scope
from tenants.services import create_api_key
from tests.conftest import World, event
from tests.rollups.helpers import assert_rollups_match_raw, settled_events

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
SINCE = (NOW - timedelta(days=3)).date()
START = datetime(SINCE.year, SINCE.month, SINCE.day, tzinfo=UTC)
# 12 decimals, as a client may send them: the rollups must keep every one.
CLIENT_COST = "0.123456789012"


def _calls(tag: str, days_ago: int, n: int = 6) -> list[dict[str, Any]]:
    """A mix of every cost source, users, environments, errors and latencies on one day."""
    when = (NOW - timedelta(days=days_ago, hours=n % 3)).isoformat()
    kinds: list[dict[str, Any]] = [
        {"model": "gpt-4o-mini", "input_tokens": 1234, "output_tokens": 567},  # the catalog's
        {"model": "in-house-1", "provider": "inhouse", "cost_usd": CLIENT_COST},  # the client's
        {"model": "mystery-9", "provider": "inhouse"},  # unpriced
    ]
    return [
        event(
            f"{tag}-{i}",
            timestamp=when,
            **kinds[i % 3],
            user_id=("ann", "bob", "")[i % 3],
            environment=("production", "staging")[i % 2],
            status_code=(200, 500, 429, 200)[i % 4],
            latency_ms=(None, 12.5, 2400, 75_000)[i % 4],
            feature=("chat", "rag")[i % 2],
        )
        for i in range(n)
    ]


@pytest.fixture
def seeded(world: World) -> World:
    """A month of rolled-up usage, from a key of a team and from a key of no team."""
    untamed = create_api_key(world.tenant, team=None, scope=Scope.INGEST)[0]
    for days_ago in (0, 1, 2, 3, 5, 12, 25):
        ingest_events(world.ingest.key, _calls(f"t{days_ago}", days_ago))
        ingest_events(untamed, _calls(f"u{days_ago}", days_ago, n=4))
    ingest_events(world.other_ingest.key, _calls("other", 1))
    services.roll_up_all_pending(world.tenant.pk)
    services.roll_up_all_pending(world.other_tenant.pk)
    assert_rollups_match_raw(world.tenant)
    return world


def _late_batches(world: World) -> None:
    """Batches that arrive while the recompute runs: one with days before and after `SINCE`."""
    ingest_events(world.ingest.key, [*_calls("late-a", 0, 3), *_calls("late-b", 12, 3)])
    ingest_events(world.ingest.key, _calls("late-c", 1, 5))


def _override(world: World) -> None:
    set_price_override(
        world.tenant,
        provider="openai",
        model="gpt-4o-mini",
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        input_per_mtok=Decimal("1.234567"),
        output_per_mtok=Decimal("2.345678"),
    )


def _costs(world: World, event_id: str) -> tuple[Decimal, str]:
    e = UsageEvent.objects.for_tenant(world.tenant).get(event_id=f"evt-{event_id}")
    return e.cost_usd, e.cost_source


@pytest.mark.django_db
def test_the_rollup_command_rebuilds_every_rollup_while_batches_are_pending(
    seeded: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = seeded
    _override(world)
    recompute = services.recompute

    def recompute_while_more_arrive(*args: Any, **kwargs: Any) -> int:
        _late_batches(world)  # after the command's own merge: pending during the recompute
        return recompute(*args, **kwargs)

    monkeypatch.setattr(services, "recompute", recompute_while_more_arrive)
    call_command("rollup", "--tenant", "acme", "--since", SINCE.isoformat(), stdout=StringIO())

    # Re-priced on purpose from SINCE on; the days before keep the price they were stored with.
    overridden = (1234 * Decimal("1.234567") + 567 * Decimal("2.345678")) / 10**6
    assert overridden == Decimal("0.002853455104")
    assert _costs(world, "t2-0") == (overridden, "override")
    assert _costs(world, "t12-0")[1] == "catalog"
    # The late batches wait for their own merge: the rollups hold every other event, exactly.
    assert PendingBatch.objects.for_tenant(world.tenant).count() == 2
    assert_rollups_match_raw(world.tenant, settled_events(world.tenant))
    windows = ConsumerWindow.objects.for_tenant(world.tenant).values_list("first_day", "last_day")
    assert set(windows) == standard_windows(datetime.now(UTC))

    services.roll_up_all_pending(world.tenant.pk)
    assert_rollups_match_raw(world.tenant)  # the late events once, not twice
    assert_rollups_match_raw(world.other_tenant)
    accepted = IngestCount.objects.for_tenant(world.tenant).aggregate(n=Sum("accepted"))["n"]
    assert accepted == UsageEvent.objects.for_tenant(world.tenant).count()


@pytest.mark.django_db
def test_a_recompute_repairs_the_days_it_covers_and_keeps_the_days_before(seeded: World) -> None:
    world = seeded
    start = START
    hourly = HourlyRollup.objects.for_tenant(world.tenant)
    before = {(r.hour, r.feature, r.environment): r.cost_usd for r in hourly.filter(hour__lt=start)}
    # Damage every kind of row the recompute rebuilds; a correct one puts all of it right.
    hourly.filter(hour__gte=start).update(cost_usd=Decimal("999"), requests=7)
    LifetimeRollup.objects.for_tenant(world.tenant).update(errors=12345)
    ConsumerWindowRollup.objects.for_tenant(world.tenant).update(cost_usd=Decimal("-1"))
    _late_batches(world)
    assert (
        services.recompute(world.tenant, SINCE)
        == settled_events(world.tenant).filter(hour__gte=start).count()
    )
    assert_rollups_match_raw(world.tenant, settled_events(world.tenant))
    after = {(r.hour, r.feature, r.environment): r.cost_usd for r in hourly.filter(hour__lt=start)}
    assert after == before
    # Twice in a row changes nothing: the second finds what the first left.
    services.recompute(world.tenant, SINCE)
    assert_rollups_match_raw(world.tenant, settled_events(world.tenant))
    services.roll_up_all_pending(world.tenant.pk)
    assert_rollups_match_raw(world.tenant)


@pytest.mark.django_db
def test_a_recompute_of_a_day_without_events_empties_its_rollups(seeded: World) -> None:
    world = seeded
    UsageEvent.objects.for_tenant(world.tenant).filter(hour__gte=START).delete()
    assert services.recompute(world.tenant, SINCE) == 0
    assert not HourlyRollup.objects.for_tenant(world.tenant).filter(hour__gte=START).exists()
    assert_rollups_match_raw(world.tenant)


def test_it_rebuilds_rows_from_before_endpoints_and_statuses_were_kept(world: World) -> None:
    # Rows rolled up by an older version hold endpoint and status "" ("not recorded");
    # `rollup --since` rebuilds them from the raw events, endpoint and status class included.
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=(NOW - timedelta(days=1)).isoformat(), endpoint="/a"),
            event(
                2, timestamp=(NOW - timedelta(days=2)).isoformat(), status_code=429, feature="chat"
            ),
        ],
    )
    services.roll_up_all_pending(world.tenant.pk)
    with connection.cursor() as cursor:
        for full in (HourlyRollup, DailyRollup, LifetimeRollup):
            cursor.execute(f"UPDATE {full._meta.db_table} SET endpoint = '', status = ''")
        for sliced in (HourlySlice, DailySlice):
            cursor.execute(f"DELETE FROM {sliced._meta.db_table}")
    sql.rebuild_slices()  # as the migration to endpoint and status leaves them
    assert set(HourlyRollup.objects.for_tenant(world.tenant).values_list("status", flat=True)) == {
        ""
    }
    call_command("rollup", "--tenant", "acme", "--since", SINCE.isoformat(), stdout=StringIO())
    assert_rollups_match_raw(world.tenant)
    kept = HourlyRollup.objects.for_tenant(world.tenant).values_list("endpoint", "status")
    assert sorted(kept) == [("", "429"), ("/a", "2xx")]
