"""Shared helpers for the billing tests: months in the past, usage, CSV reading."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.test import Client

from billing import csv_export, months
from billing.models import Invoice, InvoiceLine
from billing.money import to_cents
from ingest.models import UsageEvent
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from tenants.models import ApiKey, Tenant
from tenants.services import create_api_key

THIS_MONTH = months.current_month("UTC")
LAST_MONTH = months.previous_month(THIS_MONTH)
EARLIER = months.previous_month(LAST_MONTH)  # two months ago: closed, with a month after it
GPT4O = Decimal("0.0075")  # event() default: 1,000 input + 500 output tokens of gpt-4o


def at(month: date, day: int = 10, hour: int = 12, tz: str = "UTC") -> str:
    return datetime(month.year, month.month, day, hour, tzinfo=ZoneInfo(tz)).isoformat()


def send(key: ApiKey, *events: dict[str, Any]) -> None:
    result = ingest_events(key, list(events))
    assert not result.rejected, result.rejected
    roll_up_all_pending(key.tenant_id)


def shared_key(tenant: Tenant) -> ApiKey:
    """A key with no team: what it sends is unallocated unless the event names a team."""
    return create_api_key(tenant, name="shared")[0]


def invoice_bytes(tenant: Tenant, invoice: Invoice) -> bytes:
    return b"".join(csv_export.invoice_csv(tenant, invoice))


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def chunks(response: Any) -> Iterator[bytes]:
    """The pieces of a streamed response, as the server sends them."""
    assert response.streaming
    yield from response.streaming_content


def body(response: Any) -> bytes:
    return b"".join(chunks(response)) if response.streaming else response.content


def download(client: Client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/csv")
    return b"".join(chunks(response))


def found(pattern: str, text: str) -> str:
    """The first group of `pattern` in `text` (which must match)."""
    match = re.search(pattern, text, re.S)
    assert match is not None, pattern
    return match.group(1)


def invoices(tenant: Tenant, month: date) -> dict[str, Invoice]:
    return {i.team_slug: i for i in Invoice.objects.for_tenant(tenant).filter(month=month)}


def lines(tenant: Tenant, invoice: Invoice) -> list[InvoiceLine]:
    return list(InvoiceLine.objects.for_tenant(tenant).filter(invoice=invoice).order_by("position"))


def raw_amounts(tenant: Tenant, month: date, tz: str = "UTC") -> dict[tuple[Any, ...], Decimal]:
    """Straight from the raw events: per team, provider, model and feature, rounded to cents."""
    start, end = months.window(month, tz)
    exact: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    events = UsageEvent.objects.for_tenant(tenant).filter(hour__gte=start, hour__lt=end)
    for e in events:
        exact[(e.team_id or 0, e.provider, e.model, e.feature)] += e.cost_usd
    return {key: to_cents(value) for key, value in exact.items()}
