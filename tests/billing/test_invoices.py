"""Invoices: drafts per team per month, rounding, finalizing, late usage, allocation, beat."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing import months, services
from billing.models import Invoice, InvoiceLine, InvoiceStatus, LineType
from billing.tasks import close_finished_months
from tenants.models import Team, Tenant
from tenants.services import create_team
from tests.billing.helpers import (
    EARLIER,
    LAST_MONTH,
    THIS_MONTH,
    at,
    invoice_bytes,
    invoices,
    lines,
    send,
    shared_key,
)
from tests.conftest import World, event

D = Decimal


def _usage(world: World) -> None:
    """Last month: search 2 calls, support 1, and 1 call that no team owns."""
    create_team(world.tenant, "support", "Support", "CC-2")
    shared = shared_key(world.tenant)
    send(
        shared,
        event(1, timestamp=at(LAST_MONTH), team="search", feature="chat"),
        event(2, timestamp=at(LAST_MONTH, 11), team="search", feature="chat"),
        event(3, timestamp=at(LAST_MONTH), team="support", feature="reply"),
        event(4, timestamp=at(LAST_MONTH), feature="batch"),
    )


def test_it_drafts_one_invoice_per_team_and_one_for_unallocated_spend(world: World) -> None:
    _usage(world)
    result = services.generate_month(world.tenant, LAST_MONTH)
    found = invoices(world.tenant, LAST_MONTH)
    assert {slug: i.total_usd for slug, i in found.items()} == {
        "search": D("0.02"),  # 2 x $0.0075 = $0.015 on one line, rounded half up
        "support": D("0.01"),
        "(unallocated)": D("0.01"),
    }
    assert all(i.status == InvoiceStatus.DRAFT for i in found.values())
    assert result.total == D("0.04") and len(result.created) == 3
    search = lines(world.tenant, found["search"])
    assert [(x.feature, x.requests, x.input_tokens, x.cost_usd) for x in search] == [
        ("chat", 2, 2000, D("0.015"))
    ]
    assert found["search"].cost_center == "CC-1" and found["search"].number.startswith("acme-")


def test_it_rounds_each_line_and_totals_the_rounded_lines(world: World) -> None:
    send(world.ingest.key, *(event(n, timestamp=at(LAST_MONTH), feature=f"f{n}") for n in range(3)))
    services.generate_month(world.tenant, LAST_MONTH)
    invoice = invoices(world.tenant, LAST_MONTH)["search"]
    # Three lines of $0.0075 bill $0.01 each: the total is $0.03, not round($0.0225) = $0.02.
    assert [x.amount_usd for x in lines(world.tenant, invoice)] == [D("0.01")] * 3
    assert invoice.total_usd == D("0.03")


def test_it_replaces_a_drafts_lines_when_generated_again(world: World) -> None:
    _usage(world)
    services.generate_month(world.tenant, LAST_MONTH)
    draft = invoices(world.tenant, LAST_MONTH)["search"]
    send(world.ingest.key, event(9, timestamp=at(LAST_MONTH), feature="chat"))
    result = services.generate_month(world.tenant, LAST_MONTH)
    again = invoices(world.tenant, LAST_MONTH)["search"]
    assert again.pk == draft.pk and len(result.regenerated) == 3 and not result.created
    assert [(x.requests, x.amount_usd) for x in lines(world.tenant, again)] == [(3, D("0.02"))]
    assert InvoiceLine.objects.for_tenant(world.tenant).filter(invoice=again).count() == 1


def test_it_never_changes_a_finalized_invoice_and_bills_late_usage_next_month(
    world: World,
) -> None:
    send(world.ingest.key, event(1, timestamp=at(EARLIER), feature="chat"))
    services.generate_month(world.tenant, EARLIER, finalize=True)
    sent = invoices(world.tenant, EARLIER)["search"]
    before = invoice_bytes(world.tenant, sent)
    # Late: two more calls for the closed month, one for the month after.
    send(
        world.ingest.key,
        event(2, timestamp=at(EARLIER, 20), feature="chat"),
        event(3, timestamp=at(EARLIER, 21), feature="chat"),
        event(4, timestamp=at(LAST_MONTH), feature="chat"),
    )
    rerun = services.generate_month(world.tenant, EARLIER)
    assert rerun.kept == [sent] and not rerun.regenerated and not rerun.created
    assert invoice_bytes(world.tenant, sent) == before
    services.generate_month(world.tenant, LAST_MONTH)
    services.generate_month(world.tenant, LAST_MONTH)  # twice: the adjustment is not doubled
    after = invoices(world.tenant, LAST_MONTH)["search"]
    got = [
        (x.line_type, x.usage_month, x.requests, x.amount_usd) for x in lines(world.tenant, after)
    ]
    assert got == [
        (LineType.USAGE, LAST_MONTH, 1, D("0.01")),
        # Now 3 calls = $0.0225 -> $0.02 for the closed month; $0.01 was billed: adjust $0.01.
        (LineType.ADJUSTMENT, EARLIER, 2, D("0.01")),
    ]
    assert after.total_usd == D("0.02")
    assert invoice_bytes(world.tenant, invoices(world.tenant, EARLIER)["search"]) == before


def test_it_moves_an_adjustment_to_the_next_invoice_once_one_is_finalized(world: World) -> None:
    send(world.ingest.key, event(1, timestamp=at(EARLIER)))
    services.generate_month(world.tenant, EARLIER, finalize=True)
    send(world.ingest.key, event(2, timestamp=at(EARLIER, 2)), event(3, timestamp=at(EARLIER, 3)))
    services.generate_month(world.tenant, LAST_MONTH, finalize=True)
    send(world.ingest.key, event(4, timestamp=at(EARLIER, 4)))
    services.generate_month(world.tenant, THIS_MONTH)
    billed = InvoiceLine.objects.for_tenant(world.tenant).filter(usage_month=EARLIER)
    # 4 calls = $0.03 in all, billed as $0.01 + $0.01 (late, on last month) + $0.01 (now).
    assert [x.amount_usd for x in billed.order_by("invoice__month")] == [D("0.01")] * 3
    assert invoices(world.tenant, THIS_MONTH)["search"].total_usd == D("0.01")


def test_it_bills_a_team_new_to_a_closed_month_on_its_next_invoice(world: World) -> None:
    send(world.ingest.key, event(1, timestamp=at(EARLIER)))
    services.generate_month(world.tenant, EARLIER, finalize=True)
    create_team(world.tenant, "support")
    send(shared_key(world.tenant), event(2, timestamp=at(EARLIER), team="support"))
    rerun = services.generate_month(world.tenant, EARLIER)
    support = Team.objects.for_tenant(world.tenant).get(slug="support")
    assert rerun.deferred == [support.pk] and "support" not in invoices(world.tenant, EARLIER)
    services.generate_month(world.tenant, LAST_MONTH)
    late = lines(world.tenant, invoices(world.tenant, LAST_MONTH)["support"])
    assert [(x.line_type, x.usage_month, x.amount_usd) for x in late] == [
        (LineType.ADJUSTMENT, EARLIER, D("0.01"))
    ]


def test_it_keeps_what_a_finalized_invoice_says_when_the_team_is_renamed(world: World) -> None:
    send(world.ingest.key, event(1, timestamp=at(LAST_MONTH)))
    services.generate_month(world.tenant, LAST_MONTH, finalize=True)
    invoice = invoices(world.tenant, LAST_MONTH)["search"]
    before = invoice_bytes(world.tenant, invoice)
    Team.objects.for_tenant(world.tenant).filter(pk=world.team.pk).update(
        name="Renamed", cost_center="CC-9"
    )
    Tenant.objects.filter(pk=world.tenant.pk).update(timezone="Asia/Tokyo")
    services.generate_month(Tenant.objects.get(pk=world.tenant.pk), LAST_MONTH)
    invoice.refresh_from_db()
    assert (invoice.team_name, invoice.cost_center, invoice.timezone) == ("Search", "CC-1", "UTC")
    assert invoice_bytes(world.tenant, invoice) == before
    assert invoice.csv_sha256 and invoice.finalized_at is not None


def test_it_refuses_to_finalize_an_open_month_or_to_bill_a_future_one(world: World) -> None:
    send(world.ingest.key, event(1))
    with pytest.raises(services.BillingError, match="has not ended yet in UTC"):
        services.generate_month(world.tenant, THIS_MONTH, finalize=True)
    assert not Invoice.objects.for_tenant(world.tenant).exists()
    services.generate_month(world.tenant, THIS_MONTH)
    draft = invoices(world.tenant, THIS_MONTH)["search"]
    with pytest.raises(services.BillingError, match="has not ended yet"):
        services.finalize_invoice(world.tenant, draft.pk)
    with pytest.raises(services.BillingError, match="has not started yet"):
        services.generate_month(world.tenant, months.next_month(THIS_MONTH))


def test_it_shares_unallocated_spend_out_to_teams_to_the_cent(world: World) -> None:
    create_team(world.tenant, "support")
    shared = shared_key(world.tenant)
    team_calls = [event(n, timestamp=at(LAST_MONTH), team="search") for n in range(3)]
    team_calls.append(event(3, timestamp=at(LAST_MONTH), team="support"))
    # 7 unallocated calls of $0.0075 = $0.0525 -> one line of $0.05 to share 3:1.
    unowned = [event(f"u{n}", timestamp=at(LAST_MONTH), feature="batch") for n in range(7)]
    send(shared, *team_calls, *unowned)
    services.set_allocation(world.tenant, True)
    services.generate_month(world.tenant, LAST_MONTH)
    found = invoices(world.tenant, LAST_MONTH)
    assert "(unallocated)" not in found
    shares = {
        slug: [(x.line_type, x.amount_usd, x.requests) for x in lines(world.tenant, invoice)]
        for slug, invoice in found.items()
    }
    # 5 cents at 3:1 is 3.75 and 1.25 cents: floors 3 + 1, the spare cent to the larger rest.
    assert shares == {
        "search": [(LineType.USAGE, D("0.02"), 3), (LineType.ALLOCATION, D("0.04"), 5)],
        "support": [(LineType.USAGE, D("0.01"), 1), (LineType.ALLOCATION, D("0.01"), 2)],
    }
    assert sum(i.total_usd for i in found.values()) == D("0.08")  # 0.02 + 0.01 + 0.05


def test_it_keeps_unallocated_spend_when_no_team_spent_anything(world: World) -> None:
    send(shared_key(world.tenant), event(1, timestamp=at(LAST_MONTH)))
    services.set_allocation(world.tenant, True)
    services.generate_month(world.tenant, LAST_MONTH)
    assert list(invoices(world.tenant, LAST_MONTH)) == ["(unallocated)"]


def test_it_bills_months_in_the_tenants_time_zone(world: World) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(timezone="America/New_York")
    tenant = Tenant.objects.get(pk=world.tenant.pk)
    # 02:00 UTC on the 1st is still the evening before in New York: the month before.
    send(
        world.ingest.key,
        event(1, timestamp=at(LAST_MONTH, 1, 2)),
        event(2, timestamp=at(LAST_MONTH, 1, 6)),
    )
    services.generate_month(tenant, EARLIER)
    services.generate_month(tenant, LAST_MONTH)
    assert invoices(tenant, EARLIER)["search"].line_count == 1
    assert [x.requests for x in lines(tenant, invoices(tenant, LAST_MONTH)["search"])] == [1]


def test_it_drafts_invoices_when_a_month_ends_in_the_tenants_time_zone(world: World) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(timezone="America/New_York")
    send(world.ingest.key, event(1, timestamp=at(EARLIER)), event(2, timestamp=at(LAST_MONTH)))
    first = datetime(THIS_MONTH.year, THIS_MONTH.month, 1, tzinfo=UTC)
    # 03:00 UTC on the 1st is 23:00 the day before in New York: last month is still open.
    closed = services.close_due_months(world.tenant.pk, now=first.replace(hour=3))
    assert [r.month for r in closed] == [EARLIER]
    assert services.close_due_months(world.tenant.pk, now=first.replace(hour=3, minute=59)) == []
    closed = services.close_due_months(world.tenant.pk, now=first.replace(hour=6))
    assert [r.month for r in closed] == [LAST_MONTH]
    assert invoices(world.tenant, LAST_MONTH)["search"].status == InvoiceStatus.DRAFT


def test_it_runs_the_beat_task_for_every_tenant_once_per_month(world: World) -> None:
    send(world.ingest.key, event(1, timestamp=at(LAST_MONTH)))
    send(world.other_ingest.key, event(1, timestamp=at(LAST_MONTH)))
    assert close_finished_months() == 2  # one month closed in each tenant
    generated = {i.pk: i.generated_at for i in Invoice.unscoped_all_tenants.all()}
    assert close_finished_months() == 0  # idempotent: nothing new, nothing rewritten
    assert {i.pk: i.generated_at for i in Invoice.unscoped_all_tenants.all()} == generated
    assert len(generated) == 2
