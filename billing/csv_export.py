"""CSV downloads built from stored invoice lines only: per invoice, per tenant month, FOCUS.

- Streamed: rows come from a database iterator and leave in ~64 KiB chunks, so a million
  lines download in constant memory.
- UTF-8 (no byte-order mark), RFC 4180 quoting, CRLF line ends, stable column names
  (documented in README.md, "Chargeback and invoices").
- Spreadsheet safety: text that comes from clients or tenants (team, feature, model names,
  ...) and begins with = + - @ tab or carriage return gets a leading apostrophe, so no
  spreadsheet runs it as a formula. Numbers we generate are written as plain numbers, so a
  negative adjustment stays -1.23 and is never neutralised.
- A finalized invoice's rows never change, so its CSV is byte-identical on every download.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import QuerySet

from billing import csv_tags, months
from billing.lines import COUNTS
from billing.models import Invoice, InvoiceLine, LineType
from billing.money import ZERO
from core.csv_safe import Cell, stream
from tenants.models import Tenant

INVOICE_COLUMNS = (
    "invoice_number", "invoice_month", "invoice_status", "team", "team_name", "cost_center",
    "line_type", "usage_month", "provider", "model", "feature", "requests", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_write_tokens", "unpriced_requests", "cost_usd",
    "effective_usd_per_request", "effective_usd_per_mtok", "amount_usd",
)  # fmt: skip
FOCUS_COLUMNS = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "EffectiveCost", "InvoiceId",
    "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName",
    "PublisherName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory",
    "ServiceName", "ServiceSubcategory", "SkuId", "SubAccountId", "SubAccountName", "Tags", "x_Requests",
    "x_InputTokens", "x_OutputTokens", "x_CacheReadTokens", "x_CacheWriteTokens",
    "x_UnpricedRequests",
)  # fmt: skip
LINE_FIELDS = (
    "id", "invoice__number", "invoice__month", "invoice__status", "invoice__team_slug",
    "invoice__team_name", "invoice__cost_center", "invoice__timezone", "line_type",
    "usage_month", "provider", "model", "feature", "requests", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "unpriced_requests", "cost_usd", "amount_usd",
)  # fmt: skip
COUNT_FIELDS = COUNTS  # requests, tokens by kind, unpriced requests
MONEY_PLACES = Decimal("0.000000000001")
CENTS = Decimal("0.01")
QUANTITY_PLACES = Decimal("0.0")


def _lines(tenant: Tenant) -> QuerySet[InvoiceLine]:
    return InvoiceLine.objects.for_tenant(tenant)


def _ordered(lines: QuerySet[InvoiceLine]) -> Iterator[dict[str, Any]]:
    ordered = lines.order_by("invoice__team_slug", "invoice__team_pk", "position")
    return ordered.values(*LINE_FIELDS).iterator(chunk_size=1000)


# Invoice CSV ---------------------------------------------------------------------------


def invoice_csv(tenant: Tenant, invoice: Invoice) -> Iterator[bytes]:
    head: list[Cell] = [
        invoice.number, months.label(invoice.month), invoice.status, invoice.team_slug,
        invoice.team_name, invoice.cost_center,
    ]  # fmt: skip
    rows = _ordered(_lines(tenant).filter(invoice=invoice))
    tagged = csv_tags.any_stored(tenant, pk=invoice.pk)
    return _stream(tenant, rows, head, tagged)


def month_csv(tenant: Tenant, month: date) -> Iterator[bytes]:
    """Every invoice of the month, team by team, and one total line."""
    rows = _ordered(_lines(tenant).filter(invoice__month=month))
    tagged = csv_tags.any_stored(tenant, month=month)
    return _stream(tenant, rows, ["", months.label(month), "", "", "", ""], tagged)


def _stream(
    tenant: Tenant, rows: Iterator[dict[str, Any]], head: list[Cell], tagged: bool
) -> Iterator[bytes]:
    """The lines and total; with a last `tags` column only when a line has a breakdown (so
    every CSV without one, e.g. an invoice finalized before breakdowns, stays as it was)."""
    if not tagged:
        return stream(INVOICE_COLUMNS, _with_total(rows, head))
    lines = csv_tags.with_breakdown(tenant, rows)
    return stream((*INVOICE_COLUMNS, csv_tags.TAGS_COLUMN), _with_total(lines, head, tagged))


def invoice_sha256(tenant: Tenant, invoice: Invoice) -> str:
    digest = hashlib.sha256()
    for chunk in invoice_csv(tenant, invoice):
        digest.update(chunk)
    return digest.hexdigest()


def _with_total(
    rows: Iterable[dict[str, Any]], head: list[Cell], tagged: bool = False
) -> Iterator[list[Cell]]:
    """Each line, then a `total` line: the sums of the lines as written above it."""
    counts = dict.fromkeys(COUNT_FIELDS, 0)
    cost, amount = ZERO, ZERO
    for row in rows:
        for name in COUNT_FIELDS:
            counts[name] += row[name]
        cost, amount = cost + _money(row["cost_usd"]), amount + _cents(row["amount_usd"])
        tags: list[Cell] = [csv_tags.tags_json(row[csv_tags.TAGS_COLUMN])] if tagged else []
        yield [*_invoice_row(row), *tags]
    sums: list[Cell] = [counts[name] for name in COUNT_FIELDS]
    tags = [None] if tagged else []
    yield [*head, "total", "", "", "", "", *sums, _money(cost), None, None, _cents(amount), *tags]


def _invoice_row(row: dict[str, Any]) -> list[Cell]:
    cost = _money(row["cost_usd"])
    tokens = row["input_tokens"] + row["output_tokens"]
    return [
        row["invoice__number"], months.label(row["invoice__month"]), row["invoice__status"],
        row["invoice__team_slug"], row["invoice__team_name"], row["invoice__cost_center"],
        row["line_type"], months.label(row["usage_month"]), row["provider"], row["model"],
        row["feature"], *(row[name] for name in COUNT_FIELDS), cost,
        _per(cost, row["requests"], 1, "0.00000001"), _per(cost, tokens, 1_000_000, "0.000001"),
        _cents(row["amount_usd"]),
    ]  # fmt: skip


def _money(value: Decimal | None) -> Decimal:
    return (value or ZERO).quantize(MONEY_PLACES)


def _cents(value: Decimal | None) -> Decimal:
    return (value or ZERO).quantize(CENTS)


def _per(cost: Decimal, count: int, scale: int, places: str) -> Decimal | None:
    """Effective unit price: the exact cost over a positive count (blank otherwise)."""
    if count <= 0:
        return None
    return (cost * scale / count).quantize(Decimal(places), rounding=ROUND_HALF_UP)


# FOCUS ---------------------------------------------------------------------------------


def focus_csv(tenant: Tenant, month: date) -> Iterator[bytes]:
    """The month's invoice lines as FinOps FOCUS 1.x rows (no total row: tools sum)."""
    rows = csv_tags.with_breakdown(tenant, _ordered(_lines(tenant).filter(invoice__month=month)))
    parts = (part for row in rows for part in csv_tags.focus_parts(row))
    return stream(FOCUS_COLUMNS, (_focus_row(tenant, row, tags) for row, tags in parts))


@functools.lru_cache(maxsize=256)
def _period(month: date, tz_name: str) -> tuple[str, str]:
    start, end = months.window(month, tz_name)
    return f"{start:%Y-%m-%dT%H:%M:%SZ}", f"{end:%Y-%m-%dT%H:%M:%SZ}"


def _focus_row(tenant: Tenant, row: dict[str, Any], extra: dict[str, str]) -> list[Cell]:
    billing_start, billing_end = _period(row["invoice__month"], row["invoice__timezone"])
    charge_start, charge_end = _period(row["usage_month"], row["invoice__timezone"])
    amount = _cents(row["amount_usd"])
    tokens = _quantity(row["input_tokens"] + row["output_tokens"])
    correction = row["line_type"] in (LineType.ADJUSTMENT, LineType.ALLOCATION_ADJUSTMENT)
    provider, model = row["provider"], row["model"]
    return [
        amount, tenant.slug, tenant.name, "USD", billing_end, billing_start, "Usage",
        "Correction" if correction else None, _description(row), "Usage-Based", charge_end,
        charge_start, tokens, "Tokens", amount, amount, row["invoice__number"], tenant.name,
        amount, tokens, "Tokens", tenant.name, provider, f"{provider}/{model}", model,
        "LLM model", "AI and Machine Learning", f"{provider} API", "Generative AI",
        f"{provider}/{model}",
        row["invoice__team_slug"], row["invoice__team_name"], _tags(row, extra),
        *(row[name] for name in COUNT_FIELDS),
    ]  # fmt: skip


def _quantity(tokens: int) -> Decimal:
    """A token count as a decimal (`800.0`): FOCUS types the quantities Decimal, and a CSV
    reader infers a column of bare `800`s as integers."""
    return Decimal(tokens).quantize(QUANTITY_PLACES)


def _description(row: dict[str, Any]) -> str:
    what = f"{row['provider']}/{row['model']}, feature {row['feature'] or '(none)'}"
    kind = row["line_type"]
    if kind == LineType.ALLOCATION:
        return f"Share of unallocated spend: {what}"
    if kind in (LineType.ADJUSTMENT, LineType.ALLOCATION_ADJUSTMENT):
        return f"Late usage for {months.label(row['usage_month'])}: {what}"
    return f"Usage: {what}"


def _tags(row: dict[str, Any], extra: dict[str, str]) -> str:
    """Costboard's own tags of the line, and the tenant's (`x_<key>`, see billing.csv_tags)."""
    tags = {
        **extra,
        "team": row["invoice__team_slug"],
        "feature": row["feature"],
        "cost_center": row["invoice__cost_center"],
        "line_type": row["line_type"],
        "usage_month": months.label(row["usage_month"]),
    }
    return json.dumps(tags, ensure_ascii=False, sort_keys=True)
