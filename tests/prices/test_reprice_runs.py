"""A re-price as its record tells it: the preview the worker stored is what the apply then
changes; calls that arrive in between are re-priced by the apply, which records its own
totals beside the preview's; `rollup --since` on the command line is recorded as a run too,
and never touches a finalized invoice."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Sum
from kombu import pools as kombu_pools

from billing import services as billing
from billing.models import Invoice, InvoiceLine, LineType
from core.money import decimal_text
from costboard.celery import app as celery_app
from prices import services as prices
from prices.models import RepricePreview, RepriceRun
from rollups import repricing
from rollups.services import roll_up_all_pending
from tests.billing.helpers import EARLIER, LAST_MONTH, at, invoice_bytes, send
from tests.conftest import World, event, login
from tests.prices.test_reprice import _events, _new_prices, _rollup_cells, usage  # noqa: F401
from tests.rollups.helpers import assert_rollups_match_raw


def _computed(world: World) -> RepricePreview:
    preview, new = prices.request_preview(world.tenant, EARLIER)
    assert new
    return prices.run_preview(world.tenant.pk, preview.pk)


def test_it_applies_exactly_the_preview_the_worker_stored(usage: World) -> None:  # noqa: F811
    world = usage
    _new_prices(world)
    before = _rollup_cells(world)
    preview = _computed(world)
    owner = get_user_model().objects.get(username="owner")
    run = prices.request_reprice(world.tenant, EARLIER, preview.pricing_version, owner, preview)
    run = prices.run_reprice(world.tenant.pk, run.pk)
    after = _rollup_cells(world)

    assert (run.status, run.events_changed) == ("done", preview.events_changed) == ("done", 10)
    assert (run.old_total_usd, run.new_total_usd) == (preview.old_total_usd, preview.new_total_usd)
    for cell in preview.rows:  # the stored cells, read back from the record
        key = (cell.month, cell.team_pk)
        assert (cell.before, cell.after) == (before[key], after[key]), key
    assert not run.differs_from_preview
    page = login("finance").get(f"/prices/reprice/{run.pk}/").content.decode()
    assert "(the same as applied)" in page and 'data-testid="who">owner' in page
    assert_rollups_match_raw(world.tenant)


def test_it_reprices_calls_that_arrive_after_the_preview_and_shows_both_totals(
    usage: World,  # noqa: F811
) -> None:
    world = usage
    _new_prices(world)
    preview = _computed(world)
    send(world.ingest.key, event("late", timestamp=at(LAST_MONTH, 20)))  # a gpt-4o call
    roll_up_all_pending(world.tenant.pk)
    expected = repricing.preview(world.tenant, EARLIER)
    run = prices.request_reprice(world.tenant, EARLIER, preview.pricing_version, None, preview)
    run = prices.run_reprice(world.tenant.pk, run.pk)

    # Stored at today's prices already, the late call changes nothing but counts in the totals.
    assert (run.events_total, run.events_changed) == (preview.events_total + 1, 10)
    assert run.new_total_usd != preview.new_total_usd
    assert (run.old_total_usd, run.new_total_usd) == (expected.before, expected.after)
    assert run.differs_from_preview
    page = login("owner").get(f"/prices/reprice/{run.pk}/").content.decode()
    assert 'data-testid="differs"' in page
    assert decimal_text(preview.new_total_usd) in page and decimal_text(run.new_total_usd) in page
    assert_rollups_match_raw(world.tenant)


def test_it_records_a_command_line_re_price_and_never_touches_a_finalized_invoice(
    usage: World,  # noqa: F811
) -> None:
    world = usage
    billing.generate_month(world.tenant, EARLIER, finalize=True)
    finalized = {
        i.pk: invoice_bytes(world.tenant, i) for i in Invoice.objects.for_tenant(world.tenant)
    }
    _new_prices(world)
    preview = repricing.preview(world.tenant, EARLIER)
    out, err = StringIO(), StringIO()
    call_command(
        "rollup", "--tenant", "acme", "--since", EARLIER.isoformat(), stdout=out, stderr=err
    )

    run = RepriceRun.objects.for_tenant(world.tenant).get()
    assert (run.status, run.who, run.requested_by, run.since) == (
        "done",
        "command line",
        None,
        EARLIER,
    )
    assert (run.old_total_usd, run.new_total_usd) == (preview.before, preview.after)
    assert (run.events_total, run.events_changed) == (preview.events, 10)
    assert run.started_at is not None and run.finished_at is not None
    assert f"re-priced 10 events (of {preview.events}" in out.getvalue()
    assert "re-priced" in err.getvalue()  # its progress
    page = login("owner").get("/prices/").content.decode()
    runs = page.split('data-testid="runs"')[1]
    assert "command line" in runs and "Done" in runs
    assert not RepriceRun.objects.for_tenant(world.other_tenant).exists()

    for invoice in Invoice.objects.for_tenant(world.tenant).filter(pk__in=finalized):
        assert invoice_bytes(world.tenant, invoice) == finalized[invoice.pk]
    billing.generate_month(world.tenant, LAST_MONTH)
    lines = InvoiceLine.objects.for_tenant(world.tenant).filter(
        invoice__month=LAST_MONTH, line_type=LineType.ADJUSTMENT, usage_month=EARLIER
    )
    total = lines.aggregate(cost=Sum("cost_usd"))["cost"]
    assert total == sum(c.difference for c in preview.rows if c.month == EARLIER) != 0


def test_it_refuses_a_command_line_re_price_while_another_runs(usage: World) -> None:  # noqa: F811
    world = usage
    _new_prices(world)
    queued = prices.request_reprice(world.tenant, EARLIER, world.tenant.pricing_version)
    events = _events(world)
    with pytest.raises(CommandError, match="acme: a re-price is already queued or running"):
        call_command(
            "rollup", "--tenant", "acme", "--since", EARLIER.isoformat(), stdout=StringIO()
        )
    assert _events(world) == events
    assert list(RepriceRun.objects.for_tenant(world.tenant)) == [queued]


@pytest.fixture
def broker_down() -> Iterator[None]:
    """The worker's queue cannot be reached: Celery publishes to a Redis nobody listens on."""
    url = celery_app.conf.broker_url
    celery_app.pool.force_close_all()
    celery_app._pool = None
    # Kombu keeps its pools per broker URL, process-wide: the closed ones are dropped too, or
    # every later test that queues a task meets "Acquire on closed pool".
    kombu_pools.reset()
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        yield
    finally:
        celery_app.pool.force_close_all()
        celery_app._pool = None
        kombu_pools.reset()
        celery_app.amqp._producer_pool = None
        celery_app.conf.broker_url = url


def test_it_says_so_when_the_worker_queue_is_down(usage: World, broker_down: None) -> None:  # noqa: F811
    world = usage
    client = login("owner")
    asked = client.post("/prices/reprice/", {"since": EARLIER.isoformat()})
    assert asked.status_code == 302
    page = client.get(asked["Location"])
    assert page.status_code == 200
    assert "the worker&#x27;s queue could not be reached; try again" in page.content.decode()
    preview = RepricePreview.objects.for_tenant(world.tenant).get()
    assert preview.status == "failed"
    # Asked again, it is a new preview (a failed one is never shown as the answer).
    again = client.post("/prices/reprice/", {"since": EARLIER.isoformat()})
    assert again["Location"] != asked["Location"]
