"""The stored tag breakdown of invoice lines, as the CSV downloads carry it.

- Invoice and month CSV: a last column `tags`, only when a line of the download has a stored
  breakdown, holding a JSON object {key: {value: "amount"}} whose amounts per key add up to
  the line's `amount_usd`. Downloads without any breakdown (every invoice finalized before
  tag breakdowns existed, every tenant without chosen keys) keep their columns byte for byte.
- FOCUS: each line split into one row per value of its first key (the first the tenant had
  chosen when the invoice was generated), the cents as stored and the counts by largest
  remainder in proportion to them, so every column still adds up to the line; the value goes
  in Tags as "x_<key>" (left out on the "(none)" row: the line had no such tag).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import islice
from typing import Any

from billing.lines import COUNTS
from billing.models import InvoiceLineTag
from billing.money import largest_remainder
from rollups.models import NO_TAG_LABEL
from tenants.models import Tenant

BATCH = 1000
TAGS_COLUMN = "tags"
FOCUS_TAG_PREFIX = "x_"  # the tenant's keys never clash with Costboard's own Tags keys
# Per line: (key position, key) -> [(value, amount)], in key then value order.
Breakdown = dict[tuple[int, str], list[tuple[str, Decimal]]]


def any_stored(tenant: Tenant, **invoice: Any) -> bool:
    """Whether a line of the invoices matching `invoice` has a stored breakdown."""
    found = InvoiceLineTag.objects.for_tenant(tenant)
    return found.filter(**{f"invoice__{k}": v for k, v in invoice.items()}).exists()


def with_breakdown(tenant: Tenant, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The rows (which carry the line's `id`), each with `tags`: its stored breakdown."""
    while batch := list(islice(rows, BATCH)):
        found = (
            InvoiceLineTag.objects.for_tenant(tenant)
            .filter(line_id__in=[row["id"] for row in batch])
            .order_by("line_id", "key_position", "tag_value")
            .values_list("line_id", "key_position", "tag_key", "tag_value", "amount_usd")
        )
        by_line: dict[int, Breakdown] = {}
        for line_id, position, key, value, amount in found:
            by_line.setdefault(line_id, {}).setdefault((position, key), []).append((value, amount))
        for row in batch:
            yield {**row, TAGS_COLUMN: by_line.get(row["id"], {})}


def tags_json(breakdown: Breakdown) -> str | None:
    if not breakdown:
        return None
    tags = {key: {v: f"{a:.2f}" for v, a in values} for (_, key), values in breakdown.items()}
    return json.dumps(tags, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def focus_parts(row: dict[str, Any]) -> Iterable[tuple[dict[str, Any], dict[str, str]]]:
    """The line as FOCUS rows: itself, or its split by the first key (row, extra tags)."""
    breakdown: Breakdown = row[TAGS_COLUMN]
    if not breakdown:
        return [(row, {})]
    key = min(breakdown)[1]
    values = breakdown[min(breakdown)]
    weights = [abs(amount) for _, amount in values]
    if sum(weights) <= 0:  # nothing billed: the counts stay on the first value
        weights = [Decimal(1)] + [Decimal(0)] * (len(values) - 1)
    counts = {name: largest_remainder(row[name], weights) for name in COUNTS}
    out = []
    for i, (value, amount) in enumerate(values):
        part = {**row, **{name: counts[name][i] for name in COUNTS}, "amount_usd": amount}
        if amount or any(part[name] for name in COUNTS):
            extra = {} if value == NO_TAG_LABEL else {f"{FOCUS_TAG_PREFIX}{key}": value}
            out.append((part, extra))
    return out
