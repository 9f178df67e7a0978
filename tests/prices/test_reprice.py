"""Re-pricing with a preview: the preview is what the apply changes, per month and team; a
finalized invoice never changes and the next one carries the difference; the dry run and a
second apply change nothing."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum

from billing import services as billing
from billing.models import Invoice, InvoiceLine, LineType
from core.money import decimal_text
from core.teams import NO_TEAM
from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from prices import services as prices
from prices.models import RepriceRun
from pricing.models import PriceOverride
from pricing.services import end_price_override, set_price_override
from rollups import repricing
from rollups.models import DailyRollup, HourlyRollup
from tests.billing.helpers import (
    EARLIER,
    LAST_MONTH,
    THIS_MONTH,
    at,
    invoice_bytes,
    send,
    shared_key,
)
from tests.conftest import World, event
from tests.rollups.helpers import assert_rollups_match_raw

Cells = dict[tuple[date, int], Decimal]


def _usage(world: World) -> None:
    """Three months of calls of a catalog model, a client-priced and an unpriced one, for a
    team and for no team."""
    shared = shared_key(world.tenant)
    for n, month in enumerate((EARLIER, LAST_MONTH, THIS_MONTH)):
        day = 1 if month == THIS_MONTH else 10
        calls = [
            event(f"{n}-a", timestamp=at(month, day), cache_read_tokens=200),
            event(f"{n}-b", timestamp=at(month, day), model="gpt-4o-mini", feature="chat"),
            event(
                f"{n}-c", timestamp=at(month, day), provider="inhouse", model="x1", cost_usd="0.5"
            ),
            event(f"{n}-d", timestamp=at(month, day), provider="inhouse", model="mystery"),
        ]
        send(world.ingest.key, *calls)
        send(shared, *[{**c, "event_id": f"shared-{c['event_id']}"} for c in calls])
    send(world.other_ingest.key, event("other", timestamp=at(LAST_MONTH)))


@pytest.fixture
def usage(world: World, long_retention: None) -> World:
    _usage(world)
    return world


def _new_prices(world: World) -> None:
    set_price_override(
        world.tenant,
        provider="openai",
        model="gpt-4o",
        effective_from=datetime(EARLIER.year, EARLIER.month, 1, tzinfo=UTC),
        input_per_mtok=Decimal("1.1234567"),
        output_per_mtok=Decimal("7.7654321"),
        cache_read_per_mtok=Decimal("0.3"),
    )
    set_price_override(  # a price for the model nobody priced
        world.tenant,
        provider="inhouse",
        model="mystery",
        effective_from=datetime(LAST_MONTH.year, LAST_MONTH.month, 1, tzinfo=UTC),
        input_per_mtok=Decimal("3"),
        output_per_mtok=Decimal("9"),
    )


def _rollup_cells(world: World) -> Cells:
    """Cost per month and team, as the rollups (what every page and invoice reads) hold it."""
    cells: Cells = defaultdict(Decimal)
    rows = DailyRollup.objects.for_tenant(world.tenant).values("day", "team_pk")
    for row in rows.annotate(cost=Sum("cost_usd")):
        cells[(row["day"].replace(day=1), row["team_pk"])] += row["cost"]
    return dict(cells)


def _events(world: World) -> list[tuple[Any, ...]]:
    rows = UsageEvent.objects.for_tenant(world.tenant).order_by("pk")
    return list(rows.values_list("pk", "cost_usd", "cost_source"))


def test_it_previews_exactly_what_the_apply_then_changes_per_team_and_month(usage: World) -> None:
    world = usage
    _new_prices(world)
    before = _rollup_cells(world)
    preview = repricing.preview(world.tenant, EARLIER)
    # gpt-4o every month for both teams; mystery from last month on: 2 + 2 + 2 + 2 + 2.
    assert preview.changed == 10
    applied = repricing.apply(world.tenant, EARLIER)
    after = _rollup_cells(world)

    assert {k: c.difference for k, c in applied.cells.items()} == {
        k: c.difference for k, c in preview.cells.items()
    }
    for cell in preview.rows:
        key = (cell.month, cell.team_pk)
        assert cell.before == before[key], key
        assert cell.after == after[key], key
        assert cell.difference == after[key] - before[key]
    # One gpt-4o call (1,000 input with 200 cached, 500 output) at the new price, exactly.
    new = (800 * Decimal("1.1234567") + 200 * Decimal("0.3") + 500 * Decimal("7.7654321")) / 10**6
    e = UsageEvent.objects.for_tenant(world.tenant).get(event_id="evt-0-a")
    assert (e.cost_usd, e.cost_source) == (new.quantize(Decimal("1e-12")), "override")
    assert preview.cell(THIS_MONTH, world.team.pk).changed == 2
    assert preview.cell(EARLIER, NO_TEAM).changed == 1  # mystery was not priced yet then
    assert_rollups_match_raw(world.tenant)
    assert_rollups_match_raw(world.other_tenant)


def test_it_changes_nothing_when_applied_twice(usage: World) -> None:
    world = usage
    _new_prices(world)
    repricing.apply(world.tenant, EARLIER)
    events, cells = _events(world), _rollup_cells(world)
    again = repricing.apply(world.tenant, EARLIER)
    assert again.changed == 0 and again.difference == 0
    assert _events(world) == events and _rollup_cells(world) == cells


def test_it_prices_with_the_catalog_again_after_a_price_ends(usage: World) -> None:
    world = usage
    catalog = repricing.preview(world.tenant, EARLIER).after
    _new_prices(world)
    repricing.apply(world.tenant, EARLIER)
    for override in PriceOverride.objects.for_tenant(world.tenant):
        end_price_override(world.tenant, override.pk, override.effective_from.replace(second=1))
    result = repricing.apply(world.tenant, EARLIER)
    assert result.after == catalog and result.changed == 10


def test_it_never_touches_a_finalized_invoice_and_bills_the_difference_next(usage: World) -> None:
    world = usage
    billing.generate_month(world.tenant, EARLIER, finalize=True)
    finalized = {
        i.pk: invoice_bytes(world.tenant, i) for i in Invoice.objects.for_tenant(world.tenant)
    }
    _new_prices(world)
    preview = repricing.preview(world.tenant, EARLIER)
    repricing.apply(world.tenant, EARLIER)

    for invoice in Invoice.objects.for_tenant(world.tenant).filter(pk__in=finalized):
        assert invoice_bytes(world.tenant, invoice) == finalized[invoice.pk]
    billing.generate_month(world.tenant, LAST_MONTH)
    lines = InvoiceLine.objects.for_tenant(world.tenant).filter(
        invoice__month=LAST_MONTH, line_type=LineType.ADJUSTMENT, usage_month=EARLIER
    )
    adjusted = {
        row["invoice__team_pk"]: row["cost"]
        for row in lines.values("invoice__team_pk").annotate(cost=Sum("cost_usd"))
    }
    assert adjusted == {
        world.team.pk: preview.cell(EARLIER, world.team.pk).difference,
        NO_TEAM: preview.cell(EARLIER, NO_TEAM).difference,
    }
    assert all(d != 0 for d in adjusted.values())


def test_the_dry_run_prints_the_preview_and_changes_nothing(usage: World) -> None:
    world = usage
    _new_prices(world)
    ingest_events(world.ingest.key, [event("late", timestamp=at(LAST_MONTH))])  # left pending
    events, cells = _events(world), _rollup_cells(world)
    hourly = HourlyRollup.objects.for_tenant(world.tenant).count()
    out = StringIO()
    call_command(
        "rollup", "--tenant", "acme", "--since", EARLIER.isoformat(), "--dry-run", stdout=out
    )
    preview = repricing.preview(world.tenant, EARLIER)
    text = out.getvalue()
    assert "dry run, nothing changed" in text
    assert f"{LAST_MONTH:%Y-%m}  search" in text and f"{EARLIER:%Y-%m}  (unallocated)" in text
    assert f"{preview.changed} would change" in text
    assert f"(difference {decimal_text(preview.difference)})" in text
    assert _events(world) == events and _rollup_cells(world) == cells
    assert HourlyRollup.objects.for_tenant(world.tenant).count() == hourly
    assert PendingBatch.objects.for_tenant(world.tenant).count() == 1  # not even rolled up


def test_the_rollup_command_explains_bad_input(world: World) -> None:
    with pytest.raises(CommandError, match="--dry-run previews a re-price: give --since"):
        call_command("rollup", "--tenant", "acme", "--dry-run", stdout=StringIO())
    with pytest.raises(CommandError, match="before the raw-event retention"):
        call_command("rollup", "--tenant", "acme", "--since", "2001-01-01", "--dry-run")
    with pytest.raises(CommandError, match="tenant 'nope' does not exist"):
        call_command("rollup", "--tenant", "nope", "--since", "2026-01-01", "--dry-run")


def test_it_records_a_re_price_once_even_when_its_task_runs_twice(usage: World) -> None:
    world = usage
    _new_prices(world)
    preview = repricing.preview(world.tenant, EARLIER)
    owner = get_user_model().objects.get(username="owner")
    run = prices.request_reprice(world.tenant, EARLIER, preview.pricing_version, owner)
    with pytest.raises(prices.RepriceError, match="already queued or running"):
        prices.request_reprice(world.tenant, EARLIER, preview.pricing_version, owner)
    # Its first worker died mid-run (nothing committed): the task comes back and runs it.
    RepriceRun.objects.for_tenant(world.tenant).filter(pk=run.pk).update(status="running")
    done = prices.run_reprice(world.tenant.pk, run.pk)
    assert (done.status, done.requested_by, done.events_changed) == ("done", owner, 10)
    assert (done.old_total_usd, done.new_total_usd) == (preview.before, preview.after)
    events = _events(world)
    assert prices.run_reprice(world.tenant.pk, run.pk).finished_at == done.finished_at
    assert _events(world) == events
    with pytest.raises(RepriceRun.DoesNotExist):  # another tenant's run is not found
        prices.run_reprice(world.other_tenant.pk, run.pk)


def test_it_leaves_a_re_price_to_the_worker_already_applying_it(usage: World) -> None:
    world = usage
    _new_prices(world)
    run = prices.request_reprice(world.tenant, EARLIER, world.tenant.pricing_version)
    events = _events(world)
    # A first delivery holds the run (in another database session) and applies it; the
    # broker delivers the task again meanwhile: the second delivery must change nothing.
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
        password=db["PASSWORD"] or None, dbname=db["NAME"], autocommit=True,
    ) as first:  # fmt: skip
        first.execute("SELECT pg_advisory_lock(%s, %s)", [prices.RUN_LOCK_SPACE, run.pk])
        again = prices.run_reprice(world.tenant.pk, run.pk)
        assert again.status == "running" and again.finished_at is None
        assert _events(world) == events
    done = prices.run_reprice(world.tenant.pk, run.pk)  # the first delivery's turn
    assert (done.status, done.events_changed) == ("done", 10)
    assert _events(world) != events


def test_it_records_a_failed_re_price_when_the_prices_changed_after_the_preview(
    usage: World,
) -> None:
    world = usage
    run = prices.request_reprice(world.tenant, EARLIER, world.tenant.pricing_version)
    _new_prices(world)
    events = _events(world)
    failed = prices.run_reprice(world.tenant.pk, run.pk)
    assert failed.status == "failed" and "prices changed after the preview" in failed.error
    assert _events(world) == events


@pytest.mark.parametrize(
    ("zone", "utc", "month"),
    [
        ("America/New_York", "2026-12-01T02:00:00+00:00", date(2026, 11, 1)),
        ("America/New_York", "2026-12-01T05:00:00+00:00", date(2026, 12, 1)),
        ("Asia/Tokyo", "2026-11-30T15:00:00+00:00", date(2026, 12, 1)),
        ("UTC", "2026-12-31T23:59:59.999999+00:00", date(2026, 12, 1)),
    ],
)
def test_it_counts_months_in_the_tenants_time_zone(zone: str, utc: str, month: date) -> None:
    months = repricing.Months(zone, date(2026, 11, 30))
    epoch = datetime.fromisoformat(utc).timestamp()
    assert months.first_day(months.index(epoch)) == month
