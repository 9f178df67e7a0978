"""Property: whatever arrives, late or twice, invoices reconcile with the raw events to the cent.

For random months of usage (duplicates, late events, three time zones, allocation on or off):
- every invoice's lines add up to its total, and its CSV's total line says the same;
- a month's lines, over all invoices (adjustments included), add up to the raw events of
  that month under the documented rule: per team, provider, model and feature, round the
  exact sum to the cent (half away from zero), then add;
- a finalized invoice's CSV is byte-identical after late events and a re-run.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import months, services
from billing.models import BillingSettings, Invoice, InvoiceLine
from ingest.models import PendingBatch, UsageEvent
from rollups.models import (
    ConsumerDailyRollup,
    DailyRollup,
    DailySlice,
    HourlyRollup,
    HourlySlice,
    IngestCount,
)
from tenants.models import ApiKey, Team, Tenant
from tenants.services import create_team
from tests.billing.helpers import (
    EARLIER,
    at,
    invoice_bytes,
    raw_amounts,
    rows_of,
    send,
    shared_key,
)
from tests.conftest import World

FIRST = months.previous_month(EARLIER)  # two closed months, three months back
SECOND = EARLIER
MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("inhouse", "x-1"),  # not in the catalog: client cost or unpriced
]


def _event(raw: dict[str, Any], tz: str) -> dict[str, Any]:
    provider, model = raw["model"]
    month = (FIRST, SECOND)[raw["month"]]
    out = {
        "event_id": f"e{raw['n']}",  # a small range: many duplicates
        "timestamp": at(month, raw["day"], raw["hour"], tz),
        "provider": provider,
        "model": model,
        "input_tokens": raw["input_tokens"],
        "output_tokens": raw["output_tokens"],
        "feature": raw["feature"],
        "environment": raw["environment"],
    }
    if raw["team"]:
        out["team"] = raw["team"]
    if raw["cost_usd"] is not None:
        out["cost_usd"] = raw["cost_usd"]
    return out


events = st.fixed_dictionaries(
    {
        "n": st.integers(0, 40),
        "month": st.integers(0, 1),
        "day": st.sampled_from([1, 2, 15, 28]),  # month edges matter in other time zones
        "hour": st.sampled_from([0, 1, 5, 12, 22, 23]),
        "team": st.sampled_from(["search", "support", None]),
        "model": st.sampled_from(MODELS),
        "feature": st.sampled_from(["", "chat", "rag"]),
        "environment": st.sampled_from(["production", "staging"]),
        "input_tokens": st.integers(0, 200_000),
        "output_tokens": st.integers(0, 40_000),
        "cost_usd": st.one_of(st.none(), st.decimals(0, 3, places=9).map(str)),
    }
)


def _reset(world: World) -> Tenant:
    # Hypothesis reuses the function-scoped fixture across examples: start each one empty.
    tenant = world.tenant
    owned: tuple[type[Any], ...] = (
        InvoiceLine, Invoice, BillingSettings, UsageEvent, PendingBatch, HourlyRollup,
        DailyRollup, HourlySlice, DailySlice, ConsumerDailyRollup, IngestCount,
    )  # fmt: skip
    for model in owned:
        model.objects.for_tenant(tenant).delete()
    return tenant


def _shared_key(tenant: Tenant) -> ApiKey:
    found = ApiKey.objects.for_tenant(tenant).filter(name="shared").first()
    return found or shared_key(tenant)


def _billed(tenant: Tenant, month: date) -> dict[tuple[Any, ...], Decimal]:
    """Everything billed for `month` on any invoice, per team, provider, model and feature."""
    out: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    rows = InvoiceLine.objects.for_tenant(tenant).filter(usage_month=month)
    for line in rows.select_related("invoice"):
        out[(line.invoice.team_pk, line.provider, line.model, line.feature)] += line.amount_usd
    return out


def _assert_invoices_add_up(tenant: Tenant) -> None:
    for invoice in Invoice.objects.for_tenant(tenant):
        amounts = InvoiceLine.objects.for_tenant(tenant).filter(invoice=invoice)
        assert sum(a.amount_usd for a in amounts) == invoice.total_usd
        total_line = rows_of(invoice_bytes(tenant, invoice))[-1]
        assert total_line["line_type"] == "total"
        assert Decimal(total_line["amount_usd"]) == invoice.total_usd


def _assert_month_reconciles(tenant: Tenant, month: date, tz: str, allocate: bool) -> None:
    raw, billed = raw_amounts(tenant, month, tz), _billed(tenant, month)
    assert sum(billed.values(), Decimal(0)) == sum(raw.values(), Decimal(0))
    if not allocate:  # without sharing out, every single line matches too
        assert {k: v for k, v in billed.items() if v} == {k: v for k, v in raw.items() if v}


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(events, min_size=1, max_size=25),
    late=st.lists(events, max_size=15),
    allocate=st.booleans(),
    tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
)
def test_it_reconciles_invoices_with_raw_events_to_the_cent(
    world: World, first: list[Any], late: list[Any], allocate: bool, tz: str
) -> None:
    tenant = _reset(world)
    Tenant.objects.filter(pk=tenant.pk).update(timezone=tz)
    tenant.refresh_from_db()
    _teams(world)
    services.set_allocation(tenant, allocate)
    key = _shared_key(tenant)
    send(key, *(_event(e, tz) for e in first))
    services.generate_month(tenant, FIRST, finalize=True)
    sent = {i.pk: invoice_bytes(tenant, i) for i in Invoice.objects.for_tenant(tenant)}
    _assert_month_reconciles(tenant, FIRST, tz, allocate)

    send(key, *(_event(e, tz) for e in late))  # late for both months, some already sent
    services.generate_month(tenant, FIRST)  # a re-run changes no finalized invoice
    services.generate_month(tenant, SECOND)
    for invoice in Invoice.objects.for_tenant(tenant).filter(pk__in=sent):
        assert invoice_bytes(tenant, invoice) == sent[invoice.pk]
    _assert_invoices_add_up(tenant)
    _assert_month_reconciles(tenant, FIRST, tz, allocate)  # finalized + adjustments
    _assert_month_reconciles(tenant, SECOND, tz, allocate)


def _teams(world: World) -> None:
    if not Team.objects.for_tenant(world.tenant).filter(slug="support").exists():
        create_team(world.tenant, "support", "Support", "CC-2")
