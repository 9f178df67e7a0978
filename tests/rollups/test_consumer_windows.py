"""Top-consumer windows: always the sum of their days, moved on when the day turns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.http import QueryDict

from dashboard import selectors
from dashboard.filters import RANGES, parse_filters
from ingest.services import ingest_events
from rollups import windows
from rollups.models import ConsumerWindow, ConsumerWindowRollup
from rollups.services import refresh_consumer_windows, roll_up_all_pending
from tenants.labels import TeamLabels
from tests.conftest import World, event
from tests.rollups.helpers import daily_window_totals, window_totals

NOW = datetime.now(UTC)


def _call(n: int, when: datetime, user: str, cost: str) -> dict[str, object]:
    # A model the catalog does not know: the client's cost is what it costs.
    return event(n, timestamp=when.isoformat(), user_id=user, cost_usd=cost, model="in-house-1")


def _seed(world: World) -> None:
    today, yesterday = NOW - timedelta(minutes=1), NOW - timedelta(days=1)
    old = NOW - timedelta(days=20)
    ingest_events(
        world.ingest.key,
        [
            _call(1, today, "ann", "1.50"),
            _call(2, yesterday, "bob", "4.00"),
            _call(3, old, "bob", "2.25"),
            _call(4, today, "cy", "0.75"),
        ],
    )
    ingest_events(world.other_ingest.key, [_call(9, NOW - timedelta(days=1), "mallory", "99")])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _windows(world: World) -> set[tuple[object, object]]:
    rows = ConsumerWindow.objects.for_tenant(world.tenant)
    return set(rows.values_list("first_day", "last_day"))


@pytest.mark.django_db
def test_it_builds_every_standard_window_equal_to_its_days(world: World) -> None:
    _seed(world)
    assert _windows(world) == windows.standard_windows(NOW)
    assert window_totals(world.tenant) == daily_window_totals(world.tenant)
    today = NOW.date()
    # The closed days of the last 30: today's calls (ann, cy) are added when a page reads.
    month = ConsumerWindowRollup.objects.for_tenant(world.tenant).filter(
        first_day=today - timedelta(days=29), last_day=today - timedelta(days=1), kind="user"
    )
    bob = month.get(consumer="bob", environment="")
    assert (bob.requests, bob.cost_usd) == (2, Decimal("6.25"))
    everyone = month.get(consumer="", environment="")
    assert (everyone.requests, everyone.cost_usd) == (2, Decimal("6.25"))
    assert not month.filter(consumer__in=["ann", "cy"]).exists()


@pytest.mark.django_db
def test_it_moves_the_windows_on_when_the_day_turns(world: World) -> None:
    _seed(world)
    tomorrow = NOW + timedelta(days=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.utils.timezone.now", lambda: tomorrow)
        refresh_consumer_windows(world.tenant.pk)
    assert _windows(world) == windows.standard_windows(tomorrow)
    assert window_totals(world.tenant) == daily_window_totals(world.tenant)
    week = ConsumerWindowRollup.objects.for_tenant(world.tenant).filter(
        first_day=tomorrow.date() - timedelta(days=6),
        last_day=NOW.date(),
        kind="user",
        environment="production",
    )
    assert {r.consumer: r.cost_usd for r in week} == {
        "ann": Decimal("1.50"),
        "bob": Decimal("4.00"),
        "cy": Decimal("0.75"),
        "": Decimal("6.25"),  # everyone in production
    }


@pytest.mark.django_db
def test_it_keeps_another_tenants_consumers_out_of_the_windows(world: World) -> None:
    _seed(world)
    mine = ConsumerWindowRollup.objects.for_tenant(world.tenant)
    assert not mine.filter(consumer="mallory").exists()
    theirs = ConsumerWindowRollup.objects.for_tenant(world.other_tenant).filter(kind="user")
    assert set(theirs.values_list("consumer", flat=True)) == {"mallory", ""}  # "" = everyone


@pytest.mark.django_db
def test_it_ranks_the_same_from_a_window_as_from_the_days(world: World) -> None:
    _seed(world)
    teams = TeamLabels.of(world.tenant)
    for query in ("range=24h", "range=7d", "range=30d", "range=mtd&environment=production"):
        f = parse_filters(QueryDict(query))
        from_window = selectors.consumers(world.tenant, f, teams, "user", 2)
        windows.drop_windows(world.tenant.pk)
        from_days = selectors.consumers(world.tenant, f, teams, "user", 2)
        refresh_consumer_windows(world.tenant.pk)
        assert from_window == from_days, query
    f = parse_filters(QueryDict("range=30d"))
    top = selectors.consumers(world.tenant, f, teams, "user", 2)
    assert [(r.key, r.cost, round(r.share, 4)) for r in top] == [
        ("bob", Decimal("6.25"), 0.7353),
        ("ann", Decimal("1.50"), 0.1765),
    ]


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 3, 1, 0, 10, tzinfo=UTC),
        datetime(2026, 3, 31, 23, 30, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        datetime(2028, 2, 29, 22, 59, tzinfo=UTC),
    ],
)
def test_it_has_a_window_for_every_standard_range(now: datetime) -> None:
    for key in RANGES.keys() - {"custom"}:
        f = parse_filters(QueryDict(f"range={key}"), now)
        closed = windows.closed_part(f.first_day, f.last_day, now.date())
        assert closed is None or closed in windows.standard_windows(now), key
        assert (now.date(), now.date()) in windows.standard_windows(now)
        # Only today, read from the daily rows: 24 hours from 23:00, month to date on the 1st.
        today_only = (key == "24h" and now.hour == 23) or (key == "mtd" and now.day == 1)
        assert (closed is None) == today_only, key


@pytest.mark.django_db
def test_it_finds_a_top_consumer_who_leads_neither_yesterday_nor_today(world: World) -> None:
    # Neither day's leader leads both days together: ann and cy against bob, and dan, who is
    # deep in each day's list, against everyone.
    yesterday, today = NOW - timedelta(days=1), NOW - timedelta(minutes=1)
    calls = [("ann", yesterday, "10"), ("bob", yesterday, "9"), ("cy", yesterday, "0.5")]
    calls += [("cy", today, "10"), ("bob", today, "9"), ("ann", today, "0.5")]
    calls += [(f"u{n}", when, "0.01") for n in range(30) for when in (yesterday, today)]
    # Deeper than the first round reads (80): dan is 101st each day and first over both days.
    calls += [(f"y{n}", yesterday, str(200 - n)) for n in range(100)]
    calls += [(f"t{n}", today, str(200 - n)) for n in range(100)]
    calls += [("dan", yesterday, "100.5"), ("dan", today, "100.5")]
    batch = [_call(n, when, user, cost) for n, (user, when, cost) in enumerate(calls)]
    ingest_events(world.ingest.key, batch)
    roll_up_all_pending(world.tenant.pk)
    f = parse_filters(QueryDict("range=7d"))
    teams = TeamLabels.of(world.tenant)
    for limit in (1, 2, 3, 5):
        ranked = selectors.consumers(world.tenant, f, teams, "user", limit)
        windows.drop_windows(world.tenant.pk)
        assert ranked == selectors.consumers(world.tenant, f, teams, "user", limit), limit
        refresh_consumer_windows(world.tenant.pk)
    top = selectors.consumers(world.tenant, f, teams, "user", 4)
    assert [(r.key, r.cost) for r in top] == [
        ("dan", Decimal("201")),
        ("t0", Decimal("200")),
        ("y0", Decimal("200")),
        ("t1", Decimal("199")),
    ]


@pytest.mark.django_db
def test_it_keeps_only_all_environment_rows_per_consumer_in_todays_live_window(
    world: World,
) -> None:
    _seed(world)
    today = NOW.date()
    live = ConsumerWindow.objects.for_tenant(world.tenant).get(first_day=today, last_day=today)
    assert live.live
    rows = ConsumerWindowRollup.objects.for_tenant(world.tenant).filter(
        first_day=today, last_day=today, kind="user"
    )
    assert {(r.consumer, r.environment): r.cost_usd for r in rows} == {
        ("ann", ""): Decimal("1.50"),
        ("cy", ""): Decimal("0.75"),
        ("", "production"): Decimal("2.25"),  # everyone, per environment: the share's total
        ("", ""): Decimal("2.25"),
    }
    closed = ConsumerWindow.objects.for_tenant(world.tenant).exclude(first_day=today)
    assert not closed.filter(live=True).exists()


def _two_environments(world: World) -> None:
    today, yesterday = NOW - timedelta(minutes=1), NOW - timedelta(days=1)
    calls = [
        ("ann", today, "production", "3"),
        ("ann", today, "staging", "0.5"),
        ("bob", today, "staging", "2"),
        ("bob", yesterday, "staging", "2"),
        ("cy", today, "production", "1"),
        ("cy", yesterday, "production", "4"),
        ("dan", yesterday, "staging", "0.25"),
    ]
    ingest_events(
        world.ingest.key,
        [
            {**_call(n, when, user, cost), "environment": environment}
            for n, (user, when, environment, cost) in enumerate(calls)
        ],
    )
    roll_up_all_pending(world.tenant.pk)


@pytest.mark.django_db
def test_it_ranks_today_per_environment_from_the_daily_rows_as_the_days_do(
    world: World,
) -> None:
    _two_environments(world)
    teams = TeamLabels.of(world.tenant)
    for environment in ("staging", "production"):
        for key in ("24h", "7d", "30d", "mtd"):
            f = parse_filters(QueryDict(f"range={key}&environment={environment}"))
            assert windows.top_consumers(
                world.tenant.pk, "user", f.first_day, f.last_day, environment, NOW.date(), 3
            ), (environment, key)  # read from the windows, not the fallback
            from_window = selectors.consumers(world.tenant, f, teams, "user", 3)
            windows.drop_windows(world.tenant.pk)
            from_days = selectors.consumers(world.tenant, f, teams, "user", 3)
            refresh_consumer_windows(world.tenant.pk)
            assert from_window == from_days, (environment, key)
    f = parse_filters(QueryDict("range=7d&environment=staging"))
    top = selectors.consumers(world.tenant, f, teams, "user", 3)
    assert [(r.key, r.cost, round(r.share, 4)) for r in top] == [
        ("bob", Decimal("4"), 0.8421),
        ("ann", Decimal("0.5"), 0.1053),
        ("dan", Decimal("0.25"), 0.0526),
    ]


@pytest.mark.django_db
def test_it_rebuilds_yesterdays_live_window_with_its_environments_when_the_day_turns(
    world: World,
) -> None:
    _two_environments(world)
    tomorrow = NOW + timedelta(days=1)
    today = NOW.date()
    # Until the windows move on, a page of tomorrow reads the days, not the live window.
    assert (
        windows.top_consumers(
            world.tenant.pk, "user", today, tomorrow.date(), "staging", tomorrow.date(), 3
        )
        is None
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.utils.timezone.now", lambda: tomorrow)
        refresh_consumer_windows(world.tenant.pk)
    yesterday = ConsumerWindow.objects.for_tenant(world.tenant).get(first_day=today, last_day=today)
    assert not yesterday.live
    staging = ConsumerWindowRollup.objects.for_tenant(world.tenant).filter(
        first_day=today, last_day=today, kind="user", environment="staging"
    )
    assert {r.consumer: r.cost_usd for r in staging} == {
        "ann": Decimal("0.5"),
        "bob": Decimal("2"),
        "": Decimal("2.5"),
    }
    assert window_totals(world.tenant) == daily_window_totals(world.tenant)
