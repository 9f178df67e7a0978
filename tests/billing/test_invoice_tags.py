"""Invoice lines broken down by the tenant's chosen tag keys: stored at generation, exact to the
cent per line, frozen on finalize; carried by the invoice and month CSVs and the FOCUS export."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from billing import months, services
from billing.models import Invoice, InvoiceLine, InvoiceLineTag
from rollups.tags import reroll, set_tag_dimensions
from tests.billing.helpers import (
    LAST_MONTH,
    THIS_MONTH,
    at,
    body,
    download,
    invoice_bytes,
    invoices,
    rows_of,
    send,
    shared_key,
)
from tests.conftest import World, event, login

D = Decimal
MONTH = months.label(LAST_MONTH)
CALLS = [
    ("a", {"customer": "acme-co", "project": "p1"}, 1000, "search"),
    ("b", {"customer": "acme-co"}, 1333, "search"),
    ("c", {"customer": "beta", "project": "p2"}, 1667, "search"),
    ("d", {"customer": "gamma"}, 2000, "search"),
    ("e", {}, 9999, "search"),
    ("f", {"customer": "delta", "project": "p1"}, 777, None),
    ("g", {"customer": "acme-co"}, 4321, None),
]


def _spend(world: World, *, allocate: bool = False, keys: tuple[str, ...] = ()) -> None:
    """Last month's calls of four customers (one call without tags), for the team and
    unallocated; the per-day cap (2, set by the tests) sums gamma and delta under (other)."""
    services.set_allocation(world.tenant, allocate)
    if keys:
        reroll(world.tenant.pk, set_tag_dimensions(world.tenant, list(keys)))
    shared = shared_key(world.tenant)
    for n, tags, tokens, team in CALLS:
        fields: dict[str, Any] = {"timestamp": at(LAST_MONTH, 3), "input_tokens": tokens}
        fields.update({"tags": tags} if tags else {})
        fields.update({"team": team} if team else {})
        send(shared, event(f"tag-{n}", **fields))


def _breakdown(world: World) -> dict[int, dict[str, dict[str, D]]]:
    """Per stored line: key -> value -> amount."""
    out: dict[int, dict[str, dict[str, D]]] = defaultdict(lambda: defaultdict(dict))
    for tag in InvoiceLineTag.objects.for_tenant(world.tenant):
        out[tag.line_id][tag.tag_key][tag.tag_value] = tag.amount_usd
    return out


def _other_tenant_spend(world: World) -> None:
    set_tag_dimensions(world.other_tenant, ["customer"])
    secret = {"customer": "globex-secret-customer"}
    send(world.other_ingest.key, event("g1", timestamp=at(LAST_MONTH, 3), tags=secret))
    services.generate_month(world.other_tenant, LAST_MONTH)


@pytest.mark.parametrize("allocate", [False, True])
def test_it_splits_every_line_by_every_chosen_key_to_the_cent(
    world: World, settings: Any, allocate: bool
) -> None:
    settings.TAG_VALUES_PER_DAY = 2
    _spend(world, allocate=allocate, keys=("customer", "project"))
    services.generate_month(world.tenant, LAST_MONTH)
    lines = list(InvoiceLine.objects.for_tenant(world.tenant))
    breakdown = _breakdown(world)
    assert lines and set(breakdown) == {line.pk for line in lines}
    seen: set[str] = set()
    for line in lines:
        assert set(breakdown[line.pk]) == {"customer", "project"}
        for values in breakdown[line.pk].values():
            assert sum(values.values(), D(0)) == line.amount_usd  # exactly, per key
            seen |= set(values)
    assert {"acme-co", "beta", "(other)", "(none)", "p1", "p2"} <= seen
    total = sum((i.total_usd for i in invoices(world.tenant, LAST_MONTH).values()), D(0))
    by_customer: dict[str, D] = defaultdict(D)
    for per_key in breakdown.values():
        for value, amount in per_key["customer"].items():
            by_customer[value] += amount
    assert sum(by_customer.values(), D(0)) == total
    if allocate:  # the shared spend's tags follow it onto the team's share of it
        assert set(invoices(world.tenant, LAST_MONTH)) == {"search"}
        shares = [line for line in lines if line.line_type == "allocation"]
        assert shares and all("acme-co" in breakdown[s.pk]["customer"] for s in shares)


def test_it_stores_nothing_and_changes_no_csv_without_chosen_keys(world: World) -> None:
    _spend(world)
    services.generate_month(world.tenant, LAST_MONTH)
    assert not InvoiceLineTag.objects.for_tenant(world.tenant).exists()
    data = download(login("finance"), f"/invoices/month/{MONTH}/csv/")
    assert b"tags" not in data.splitlines()[0]


def test_it_recomputes_a_draft_and_counts_usage_before_the_keys_history_as_none(
    world: World,
) -> None:
    """Keys chosen after the usage and not yet re-rolled: the whole line is (none); once the
    re-roll has run, regenerating the draft splits it by the values."""
    _spend(world)
    set_tag_dimensions(world.tenant, ["customer"])  # the re-roll has not run yet
    services.generate_month(world.tenant, LAST_MONTH)
    team = invoices(world.tenant, LAST_MONTH)["search"]
    before = _breakdown(world)
    assert all(set(b["customer"]) == {"(none)"} for b in before.values())
    reroll(world.tenant.pk, ["customer"])
    services.generate_month(world.tenant, LAST_MONTH)
    after = _breakdown(world)
    line = InvoiceLine.objects.for_tenant(world.tenant).get(invoice=team)
    assert {"acme-co", "beta", "gamma", "(none)"} == set(after[line.pk]["customer"])
    assert sum(after[line.pk]["customer"].values(), D(0)) == line.amount_usd


def test_it_keeps_a_csv_finalized_before_tags_byte_identical(world: World) -> None:
    """An invoice finalized without a breakdown (as every invoice before breakdowns existed):
    choosing keys, more usage and regenerating never change its CSV."""
    _spend(world)
    services.generate_month(world.tenant, LAST_MONTH, finalize=True)
    invoice = invoices(world.tenant, LAST_MONTH)["search"]
    before = download(login("finance"), f"/invoices/{invoice.pk}/csv/")
    reroll(world.tenant.pk, set_tag_dimensions(world.tenant, ["customer"]))
    send(world.ingest.key, event("late", timestamp=at(LAST_MONTH, 20), tags={"customer": "x"}))
    services.generate_month(world.tenant, LAST_MONTH)
    services.generate_month(world.tenant, THIS_MONTH)
    assert download(login("finance"), f"/invoices/{invoice.pk}/csv/") == before
    invoice.refresh_from_db()
    assert b"tags" not in before.splitlines()[0]
    assert invoice_bytes(world.tenant, invoice) == before


def test_it_freezes_the_breakdown_of_a_finalized_invoice(world: World, settings: Any) -> None:
    settings.TAG_VALUES_PER_DAY = 2
    _spend(world, keys=("customer",))
    services.generate_month(world.tenant, LAST_MONTH, finalize=True)
    invoice = invoices(world.tenant, LAST_MONTH)["search"]
    before = download(login("finance"), f"/invoices/{invoice.pk}/csv/")
    stored = _breakdown(world)
    # Other keys, late usage of the month and next month's invoice: the sent one stays.
    reroll(world.tenant.pk, set_tag_dimensions(world.tenant, ["project"]))
    send(world.ingest.key, event("late", timestamp=at(LAST_MONTH, 20), tags={"customer": "x"}))
    services.generate_month(world.tenant, LAST_MONTH)
    services.generate_month(world.tenant, THIS_MONTH)
    after = download(login("finance"), f"/invoices/{invoice.pk}/csv/")
    assert after == before
    invoice.refresh_from_db()
    assert invoice.csv_sha256 and invoice_bytes(world.tenant, invoice) == before
    assert {k: v for k, v in _breakdown(world).items() if k in stored} == stored
    rows = rows_of(after)
    tags = json.loads(rows[0]["tags"])
    assert set(tags) == {"customer"} and "(other)" in tags["customer"]
    assert sum((D(a) for a in tags["customer"].values()), D(0)) == D(rows[0]["amount_usd"])
    assert rows[-1]["line_type"] == "total" and rows[-1]["tags"] == ""
    # The late call is billed next month, split by the key chosen now.
    late = invoices(world.tenant, THIS_MONTH)["search"]
    adjustment = rows_of(download(login("finance"), f"/invoices/{late.pk}/csv/"))[0]
    assert adjustment["line_type"] == "adjustment" and set(json.loads(adjustment["tags"])) == {
        "project"
    }
    focus = rows_of(
        download(login("finance"), f"/invoices/month/{months.label(THIS_MONTH)}/focus/")
    )
    assert not any("x_customer" in json.loads(r["Tags"]) for r in focus)  # no longer chosen
    assert sum((D(r["BilledCost"]) for r in focus), D(0)) == late.total_usd


def test_it_splits_focus_rows_by_the_first_key_with_exact_totals(
    world: World, settings: Any
) -> None:
    settings.TAG_VALUES_PER_DAY = 2
    _spend(world, keys=("customer", "project"))
    services.generate_month(world.tenant, LAST_MONTH)
    rows = rows_of(download(login("finance"), f"/invoices/month/{MONTH}/focus/"))
    tags = [json.loads(r["Tags"]) for r in rows]
    assert {t.get("x_customer") for t in tags} >= {"acme-co", "beta", "(other)", None}
    assert all("x_project" not in t and t["team"] for t in tags)  # Costboard's own kept
    total = sum((i.total_usd for i in invoices(world.tenant, LAST_MONTH).values()), D(0))
    assert sum((D(r["BilledCost"]) for r in rows), D(0)) == total
    lines = InvoiceLine.objects.for_tenant(world.tenant)
    tokens = sum(line.input_tokens + line.output_tokens for line in lines)
    assert sum(D(r["ConsumedQuantity"]) for r in rows) == tokens
    assert sum(int(r["x_Requests"]) for r in rows) == sum(line.requests for line in lines)
    plain = rows_of(download(login("finance"), f"/invoices/month/{MONTH}/csv/"))
    assert sum(D(r["amount_usd"]) for r in plain[:-1]) == total


def test_it_never_shows_another_tenants_tags(world: World) -> None:
    _other_tenant_spend(world)
    _spend(world, keys=("customer",))
    services.generate_month(world.tenant, LAST_MONTH)
    finance = login("finance")
    urls = [
        *(f"/invoices/{i.pk}/csv/" for i in Invoice.objects.for_tenant(world.tenant)),
        f"/invoices/month/{MONTH}/csv/",
        f"/invoices/month/{MONTH}/focus/",
    ]
    for url in urls:
        data = download(finance, url)
        assert b"acme-co" in data and b"globex-secret" not in data, url
    theirs = Invoice.objects.for_tenant(world.other_tenant).get()
    assert b"globex-secret" in download(login("outsider"), f"/invoices/{theirs.pk}/csv/")
    assert not InvoiceLineTag.objects.for_tenant(world.tenant).filter(
        tag_value__startswith="globex"
    )


def test_it_lets_finance_and_owners_download_and_nobody_else(world: World) -> None:
    _spend(world, keys=("customer",))
    services.generate_month(world.tenant, LAST_MONTH)
    invoice = invoices(world.tenant, LAST_MONTH)["search"]
    urls = [
        f"/invoices/{invoice.pk}/csv/",
        f"/invoices/month/{MONTH}/csv/",
        f"/invoices/month/{MONTH}/focus/",
    ]
    for url in urls:
        assert b"acme-co" in download(login("owner"), url)
        assert b"acme-co" in download(login("finance"), url)
        assert login("member").get(url).status_code == 403, url
    assert login("outsider").get(urls[0]).status_code == 404
    outsider = login("outsider")
    for url in urls[1:]:  # their own (empty) month: none of this tenant's lines
        response = outsider.get(url)
        assert response.status_code in (200, 404)
        assert b"acme-co" not in body(response)


def test_it_shows_the_invoices_amount_per_tag_value_on_its_page(world: World) -> None:
    _other_tenant_spend(world)
    _spend(world, keys=("customer", "project"))
    services.generate_month(world.tenant, LAST_MONTH)
    invoice = invoices(world.tenant, LAST_MONTH)["search"]
    html = login("finance").get(f"/invoices/{invoice.pk}/").content.decode()
    for key in ("customer", "project"):
        table = re.search(rf'data-testid="tag-{key}">(.*?)</table>', html, re.S)
        assert table, key
        rows = dict(re.findall(r"<tr><td>([^<]*)</td><td class=\"num\">([^<]*)</td>", table[1]))
        amounts = {v: D(a.replace("$", "").replace(",", "")) for v, a in rows.items()}
        assert amounts.pop("Total") == invoice.total_usd
        assert sum(amounts.values(), D(0)) == invoice.total_usd
    assert "acme-co" in html and "globex-secret" not in html
    theirs = Invoice.objects.for_tenant(world.other_tenant).get()
    assert login("finance").get(f"/invoices/{theirs.pk}/").status_code == 404
