"""Chargeback and invoice pages: who may open them, what they show, what their forms do."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from billing import months, services
from billing.models import Invoice, InvoiceStatus
from tenants.services import create_team
from tests.billing.helpers import (
    EARLIER,
    LAST_MONTH,
    THIS_MONTH,
    at,
    body,
    found,
    invoices,
    send,
    shared_key,
)
from tests.conftest import World, event, login

MONTH = months.label(LAST_MONTH)


def _usage(world: World) -> None:
    """Last month: search $0.02 (chat) + $0.01 (rag), support $0.01, unallocated $0.01;
    the month before: search $0.02."""
    create_team(world.tenant, "support", "Customer Support", "CC-2")
    shared = shared_key(world.tenant)
    send(
        shared,
        *(event(n, timestamp=at(LAST_MONTH), team="search", feature="chat") for n in range(3)),
        event(
            3,
            timestamp=at(LAST_MONTH),
            team="search",
            feature="rag",
            model="gpt-4o-mini",
            input_tokens=20_000,
            output_tokens=10_000,
        ),
        event(4, timestamp=at(LAST_MONTH), team="support", feature="reply"),
        event(5, timestamp=at(LAST_MONTH), feature="batch"),
        event(8, timestamp=at(LAST_MONTH), team="support", feature="reply", model="in-house-7b"),
        event(6, timestamp=at(EARLIER), team="search", feature="chat"),
        event(7, timestamp=at(EARLIER), team="search", feature="chat"),
    )
    send(world.other_ingest.key, event(9, timestamp=at(LAST_MONTH), feature="globex-secret"))


def _pages(world: World) -> list[str]:
    services.generate_month(world.tenant, LAST_MONTH)
    pk = invoices(world.tenant, LAST_MONTH)["search"].pk
    return [
        f"/chargeback/?month={MONTH}",
        f"/chargeback/?month={MONTH}&team=search",
        f"/invoices/?month={MONTH}",
        f"/invoices/{pk}/",
        f"/invoices/{pk}/csv/",
        f"/invoices/month/{MONTH}/csv/",
        f"/invoices/month/{MONTH}/focus/",
    ]


def test_it_shows_chargeback_and_invoices_to_finance_and_admins_only(world: World) -> None:
    _usage(world)
    for path in _pages(world):
        for username in ("owner", "finance"):
            response = login(username).get(path)
            assert response.status_code == 200, (username, path)
            assert b"globex-secret" not in body(response)
        assert login("member").get(path).status_code == 403, path
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_shows_the_menu_links_only_to_finance_and_admins(world: World) -> None:
    assert 'href="/chargeback/"' in login("finance").get("/").content.decode()
    assert 'href="/invoices/"' in login("owner").get("/").content.decode()
    viewer = login("member").get("/").content.decode()
    assert 'href="/chargeback/"' not in viewer and 'href="/invoices/"' not in viewer


def test_it_answers_404_for_another_tenants_invoice(world: World) -> None:
    send(world.other_ingest.key, event(1, timestamp=at(LAST_MONTH)))
    services.generate_month(world.other_tenant, LAST_MONTH)
    theirs = Invoice.objects.for_tenant(world.other_tenant).get()
    client = login("finance")
    for path in (f"/invoices/{theirs.pk}/", f"/invoices/{theirs.pk}/csv/"):
        assert client.get(path).status_code == 404
    assert client.post(f"/invoices/{theirs.pk}/finalize/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == InvoiceStatus.DRAFT
    assert login("outsider").get(f"/invoices/{theirs.pk}/").status_code == 200


def test_it_shows_spend_per_team_cost_center_model_and_feature(world: World) -> None:
    _usage(world)
    page = login("finance").get(f"/chargeback/?month={MONTH}").content.decode()
    assert 'data-testid="chargeback-total">$0.05<' in page  # 0.03 + 0.01 + 0.01 (per line)
    assert 'data-testid="unallocated">$0.01<' in page
    assert "Unpriced usage." in page and "<strong>openai/in-house-7b</strong> (1 calls)" in page
    teams = _table(page, "teams")
    assert teams[0][:3] == ["search Search", "CC-1", "$0.03"]
    assert [row[0] for row in teams] == [
        "search Search",
        "(unallocated)",
        "support Customer Support",
    ]
    assert teams[0][4] == "▲ 50.0%"  # $0.03 against $0.02 the month before
    assert [r[0] for r in _table(page, "cost-centers")] == ["CC-1", "(unallocated)", "CC-2"]
    models = [r[0] for r in _table(page, "models")]
    assert models == ["openai/gpt-4o", "openai/gpt-4o-mini", "openai/in-house-7b"]
    assert {r[0] for r in _table(page, "features")} == {"chat", "rag", "reply", "batch"}
    assert f'href="?month={MONTH}&amp;team=search"' in page
    figure = json.loads(found(r'id="by_team" type="application/json">(.*?)<', page))
    assert figure["data"][0]["x"][-1] == "0.03"


def test_it_drills_down_to_one_team(world: World) -> None:
    _usage(world)
    page = login("finance").get(f"/chargeback/?month={MONTH}&team=search").content.decode()
    assert 'data-testid="chargeback-total">$0.03<' in page and "Search" in page
    assert [r[0] for r in _table(page, "features")] == ["chat", "rag"]
    assert login("finance").get(f"/chargeback/?month={MONTH}&team=nope").status_code == 404
    unowned = login("finance").get(f"/chargeback/?month={MONTH}&team=(unallocated)")
    assert 'data-testid="chargeback-total">$0.01<' in unowned.content.decode()


def test_it_explains_a_bad_month_and_shows_the_current_one(world: World) -> None:
    page = login("finance").get("/chargeback/?month=2026-13").content.decode()
    assert "a month must be YYYY-MM" in page and months.label(THIS_MONTH) in page


def test_it_lets_an_admin_share_unallocated_spend_out(world: World) -> None:
    _usage(world)
    assert login("finance").post("/chargeback/allocation/", {"allocate": "on"}).status_code == 403
    response = login("owner").post(
        "/chargeback/allocation/", {"allocate": "on", "back": f"month={MONTH}"}
    )
    assert response.status_code == 302 and response["Location"] == f"/chargeback/?month={MONTH}"
    page = login("finance").get(f"/chargeback/?month={MONTH}").content.decode()
    assert "Shared out to teams" in page and "(unallocated)" not in _table_text(page, "teams")
    assert 'data-testid="chargeback-total">$0.05<' in page


def test_it_generates_and_finalizes_invoices_from_the_page_with_csrf(world: World) -> None:
    _usage(world)
    client = login("finance", Client(enforce_csrf_checks=True))
    assert client.post("/invoices/generate/", {"month": MONTH}).status_code == 403  # no token
    page = client.get(f"/invoices/?month={MONTH}")
    token = page.cookies["csrftoken"].value
    client.post("/invoices/generate/", {"month": MONTH, "csrfmiddlewaretoken": token})
    listed = client.get(f"/invoices/?month={MONTH}").content.decode()
    assert 'data-testid="month-total">$0.05<' in listed and listed.count("Finalize</button>") == 3
    search = invoices(world.tenant, LAST_MONTH)["search"]
    client.post(f"/invoices/{search.pk}/finalize/", {"csrfmiddlewaretoken": token})
    search.refresh_from_db()
    assert search.status == InvoiceStatus.FINALIZED
    assert search.finalized_by is not None and search.finalized_by.username == "finance"
    client.post("/invoices/finalize/", {"month": MONTH, "csrfmiddlewaretoken": token})
    statuses = {i.status for i in invoices(world.tenant, LAST_MONTH).values()}
    assert statuses == {InvoiceStatus.FINALIZED}
    assert client.get("/invoices/generate/").status_code == 405


def test_it_says_why_an_open_month_cannot_be_finalized(world: World) -> None:
    send(world.ingest.key, event(1))
    services.generate_month(world.tenant, THIS_MONTH)
    draft = invoices(world.tenant, THIS_MONTH)["search"]
    response = login("finance").post(f"/invoices/{draft.pk}/finalize/", follow=True)
    assert "has not ended yet in UTC" in response.content.decode()
    draft.refresh_from_db()
    assert draft.is_draft
    bad = login("finance").post("/invoices/generate/", {"month": "soon"}, follow=True)
    assert "a month must be YYYY-MM" in bad.content.decode()


@pytest.mark.parametrize("path", ["/invoices/month/2026-13/csv/", "/invoices/month/x/focus/"])
def test_it_answers_404_for_a_bad_month_in_a_download_link(world: World, path: str) -> None:
    assert login("finance").get(path).status_code == 404


def _table(page: str, testid: str) -> list[list[str]]:
    tbody = found(rf'data-testid="{testid}">.*?<tbody>(.*?)</tbody>', page)
    rows = re.findall(r"<tr>(.*?)</tr>", tbody, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    return [[" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in row] for row in cells]


def _table_text(page: str, testid: str) -> str:
    return " ".join(" ".join(row) for row in _table(page, testid))


@pytest.mark.parametrize("month", ["9999-12", "0000-01", "1969-12", "10000-01"])
@pytest.mark.parametrize("path", ["/chargeback/", "/invoices/"])
def test_it_explains_a_month_out_of_bounds_and_shows_another(
    world: World, path: str, month: str
) -> None:
    response = login("finance").get(f"{path}?month={month}")
    assert response.status_code == 200
    assert "a month must be YYYY-MM" in response.content.decode()


@pytest.mark.parametrize("month", ["1970-01", "9998-12"])
def test_it_shows_the_first_and_last_month_there_is(world: World, month: str) -> None:
    page = login("finance").get(f"/chargeback/?month={month}").content.decode()
    assert "a month must be" not in page and month in page
    assert login("finance").get(f"/invoices/month/{month}/csv/").status_code == 200
    assert login("finance").get(f"/invoices/month/{month}/focus/").status_code == 200


@pytest.mark.parametrize("path", ["/invoices/month/9999-12/csv/", "/invoices/month/0000-01/focus/"])
def test_it_answers_404_for_a_month_out_of_bounds_in_a_download_link(
    world: World, path: str
) -> None:
    assert login("finance").get(path).status_code == 404


def test_it_explains_generating_a_month_out_of_bounds(world: World) -> None:
    page = login("finance").post("/invoices/generate/", {"month": "9999-12"}, follow=True)
    assert "a month must be YYYY-MM from 1970-01 to 9998-12" in page.content.decode()


def test_it_ignores_nul_characters_in_the_chargeback_filters(world: World) -> None:
    query = "team=search%00&feature=%00&model=x%00y&environment=%00"
    assert login("finance").get(f"/chargeback/?month={MONTH}&{query}").status_code == 200
