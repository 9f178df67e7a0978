"""Chargeback by a cost allocation tag: rows per value of a chosen key that add up, to the cent,
to the team view's total; `(none)` and `(other)` as stored; roles and other tenants."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from billing import months, selectors, services, tag_chargeback
from rollups.tags import reroll, set_tag_dimensions
from tenants.models import Tenant
from tests.billing.helpers import LAST_MONTH, at, send, shared_key
from tests.conftest import World, event, login

MONTH = months.label(LAST_MONTH)
URL = f"/chargeback/?month={MONTH}&by=tag:customer"


def _spend(tenant: Tenant, world: World, *, allocate: bool) -> None:
    """Calls of four customers, one without the tag; the per-day cap (2) admits acme-co and
    beta, so gamma and delta are summed under (other)."""
    services.set_allocation(tenant, allocate)
    shared = shared_key(tenant)
    calls = [
        ("a", "acme-co", 1000, "search"), ("b", "acme-co", 1333, None),
        ("c", "beta", 1667, "search"), ("d", "gamma", 2000, None),
        ("e", None, 9999, "search"), ("f", "delta", 777, None),
    ]  # fmt: skip
    for n, customer, tokens, team in calls:
        fields: dict[str, Any] = {"timestamp": at(LAST_MONTH, 3), "input_tokens": tokens}
        if customer:
            fields["tags"] = {"customer": customer}
        if team:
            fields["team"] = team
        send(shared, event(f"tag-{n}", **fields))
    reroll(tenant.pk, set_tag_dimensions(tenant, ["customer"]))


def _page_cents(html: str, testid: str) -> Decimal:
    found = re.search(rf'data-testid="{testid}">\$([\d,.]+)<', html)
    assert found, testid
    return Decimal(found.group(1).replace(",", ""))


@pytest.mark.django_db
@pytest.mark.parametrize("allocate", [False, True])
def test_it_allocates_by_a_tag_key_to_the_cent_of_the_team_view(
    world: World, settings: Any, allocate: bool
) -> None:
    settings.TAG_VALUES_PER_DAY = 2
    _spend(world.tenant, world, allocate=allocate)
    page = selectors.chargeback(world.tenant, LAST_MONTH)
    spend = tag_chargeback.tag_spend(
        world.tenant, "customer", LAST_MONTH, "UTC", (page.total, page.previous_total)
    )
    amounts = {r.key: r.amount for r in spend.rows}
    # Admitted first come in value order: acme-co and beta; gamma and delta are (other).
    assert set(amounts) == {"acme-co", "beta", "(other)", "(none)"}
    assert sum(amounts.values()) == page.total == spend.total
    generated = services.generate_month(world.tenant, LAST_MONTH).invoices
    assert page.total == sum((invoice.total_usd for invoice in generated), Decimal(0))
    calls = {r.key: r.requests for r in spend.rows}
    assert calls == {"acme-co": 2, "beta": 1, "(other)": 2, "(none)": 1}
    exact = sum((r.exact for r in spend.rows), Decimal(0))
    for row in spend.rows:  # each row within a cent of its exact share of the invoiced total
        assert abs(row.amount - row.exact * page.total / exact) < Decimal("0.01"), row
    html = login("owner").get(URL).content.decode()
    assert _page_cents(html, "tag-total") == _page_cents(html, "chargeback-total") == page.total
    assert "(other)" in html and "(none)" in html and "acme-co" in html


@pytest.mark.django_db
def test_it_splits_cents_by_largest_remainder_so_rows_add_up() -> None:
    third = Decimal("0.0033333333")
    parts = tag_chargeback.split_cents(Decimal("0.01"), {"a": third, "b": third, "c": third})
    assert parts == {"a": Decimal("0.01"), "b": Decimal("0.00"), "c": Decimal("0.00")}
    assert tag_chargeback.split_cents(Decimal("1.00"), {}) == {}


@pytest.mark.django_db
def test_it_shows_a_drilled_teams_spend_by_tag(world: World) -> None:
    _spend(world.tenant, world, allocate=False)
    html = login("finance").get(f"{URL}&team=search").content.decode()
    assert _page_cents(html, "tag-total") == _page_cents(html, "chargeback-total")
    rows = html.split('data-testid="tag-rows"')[1].split("</table>")[0]
    assert "beta" in rows and "gamma" not in rows  # gamma's call has no team


@pytest.mark.django_db
def test_it_says_which_keys_exist_for_an_unknown_key(world: World) -> None:
    _spend(world.tenant, world, allocate=False)
    for by in ("tag:nope", "cost_center", "tag:"):
        response = login("owner").get(f"/chargeback/?month={MONTH}&by={by}")
        html = response.content.decode()
        assert response.status_code == 200
        assert "unknown allocation" in html and "tag:customer" in html, by
        assert 'data-testid="tag-rows"' not in html and 'data-testid="teams"' in html


@pytest.mark.django_db
def test_it_keeps_the_tag_view_from_members_and_other_tenants(world: World) -> None:
    _spend(world.tenant, world, allocate=False)
    assert login("member").get(URL).status_code == 403
    outsider = login("outsider").get(URL)
    html = outsider.content.decode()
    assert outsider.status_code == 200  # their own chargeback, which has no such key
    assert "unknown allocation" in html and "acme-co" not in html and "beta" not in html
    assert login("outsider").get(f"{URL}&team=search").status_code == 200  # their own team
    assert "acme-co" not in login("outsider").get(f"{URL}&team=search").content.decode()
