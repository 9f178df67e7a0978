"""`/prices/`: members read, admins edit; finance previews; another tenant's ids are 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client, override_settings

from prices import services
from prices.models import RepricePreview, RepriceRun
from pricing.models import PriceOverride
from pricing.services import set_price_override
from tests.billing.helpers import send
from tests.conftest import World, event, login

# A Redis nobody listens on: what the cache is during an outage.
DEAD_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
TODAY = NOW.date().isoformat()
PRICE = {
    "action": "add_price",
    "provider": "inhouse",
    "model": "mystery",
    "effective_from": (NOW - timedelta(days=2)).strftime("%Y-%m-%d"),
    "input_per_mtok": "3",
    "output_per_mtok": "9.5",
}


@pytest.fixture
def usage(world: World) -> World:
    when = NOW.isoformat()
    send(
        world.ingest.key,
        *[event(f"a{i}", timestamp=when) for i in range(3)],
        event("b", timestamp=when, provider="anthropic", model="claude-sonnet-4-5"),
        event("c", timestamp=when, provider="deepseek", model="deepseek-chat"),
        event("d", timestamp=when, provider="inhouse", model="x1", cost_usd="0.25"),
        event("e", timestamp=when, provider="inhouse", model="mystery"),
    )
    send(world.other_ingest.key, event("o", timestamp=when, model="gpt-4o-globex-only"))
    return world


def _rows(client: Client, query: str = "") -> list[str]:
    page = client.get(f"/prices/{query}").content.decode()
    body = page.split('data-testid="models"')[1].split("</table>")[0]
    return body.split('data-testid="model-row"')[1:]


@pytest.mark.parametrize("username", ["owner", "finance", "member"])
def test_it_shows_every_model_its_price_and_source_to_every_member(
    usage: World, username: str
) -> None:
    rows = _rows(login(username))
    assert len(rows) == 5
    # Unpriced first, with the way out; the rest by spend.
    assert "inhouse/mystery" in rows[0] and "unpriced" in rows[0]
    assert ("set a price" in rows[0]) == (username == "owner")
    gpt = next(r for r in rows if "openai/gpt-4o" in r)
    assert "catalog" in gpt and ">2.5<" in gpt and ">10<" in gpt and ">1.25<" in gpt
    assert ">3<" in gpt  # calls
    assert "client-reported" in next(r for r in rows if "inhouse/x1" in r)
    claude = next(r for r in rows if "claude-sonnet-4-5" in r)
    assert "3; 6 above 200,000 input tokens" in claude  # a tier shown as a tier
    deepseek = next(r for r in rows if "deepseek-chat" in r)
    assert "00:30-16:30 UTC daily" in deepseek and "other times of day" in deepseek
    assert "gpt-4o-globex-only" not in login(username).get("/prices/").content.decode()


def test_it_shows_the_catalogs_data_date(usage: World) -> None:
    assert "bundled with genai-prices 0." in login("member").get("/prices/").content.decode()


def test_it_shows_nothing_of_another_tenant_to_an_outsider(usage: World) -> None:
    set_price_override(
        usage.tenant, provider="openai", model="gpt-4o", effective_from=NOW,
        input_per_mtok=Decimal("1.75"), output_per_mtok=Decimal("7"),
    )  # fmt: skip
    page = login("outsider").get("/prices/").content.decode()
    assert "gpt-4o-globex-only" in page
    assert "inhouse/mystery" not in page and "1.75" not in page


def test_it_lets_an_admin_add_a_price_and_offers_a_re_price(usage: World) -> None:
    client = login("owner")
    response = client.post("/prices/", PRICE)
    assert response.status_code == 302
    override = PriceOverride.objects.for_tenant(usage.tenant).get()
    assert (override.model, override.output_per_mtok) == ("mystery", Decimal("9.5"))
    page = client.get("/prices/").content.decode()
    assert 'data-testid="reprice-offer"' in page
    assert f'name="since" value="{PRICE["effective_from"]}"' in page
    row = _rows(client)[0]  # its stored calls are still unpriced: first until re-priced
    assert "inhouse/mystery" in row and "your price" in row and ">9.5<" in row


@pytest.mark.parametrize("username", ["finance", "member"])
def test_it_refuses_price_changes_below_admin(usage: World, username: str) -> None:
    assert login(username).post("/prices/", PRICE).status_code == 403
    assert not PriceOverride.objects.for_tenant(usage.tenant).exists()


def test_it_names_the_field_of_a_bad_price(usage: World) -> None:
    bad = {**PRICE, "input_per_mtok": "-1", "effective_from": "soon"}
    response = login("owner").post("/prices/", bad)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid date/time." in page and "greater than or equal to 0" in page
    assert not PriceOverride.objects.for_tenant(usage.tenant).exists()


def test_it_refuses_a_name_that_lower_case_makes_too_long(usage: World) -> None:
    # 64 "İ" fit the field, but stored in lower case they are 128 characters: was a 500.
    response = login("owner").post("/prices/", {**PRICE, "provider": "İ" * 64})
    assert response.status_code == 200
    assert "must be at most 64 characters in lower case" in response.content.decode()
    assert not PriceOverride.objects.for_tenant(usage.tenant).exists()


def test_it_ends_a_price_and_refuses_an_end_before_its_start(usage: World) -> None:
    client = login("owner")
    client.post("/prices/", PRICE)
    override = PriceOverride.objects.for_tenant(usage.tenant).get()
    early = {"action": "end_price", "id": override.pk, "ended_at": "2001-01-01 00:00"}
    page = client.post("/prices/", early).content.decode()
    assert "must be after the price&#x27;s start" in page
    client.post("/prices/", {**early, "ended_at": TODAY + " 00:00"})
    override.refresh_from_db()
    assert override.ended_at == datetime.fromisoformat(TODAY).replace(tzinfo=UTC)
    assert "unpriced" in _rows(client)[0]  # the catalog does not know it: unpriced again


def test_it_answers_404_for_another_tenants_price(usage: World) -> None:
    login("owner").post("/prices/", PRICE)
    override = PriceOverride.objects.for_tenant(usage.tenant).get()
    outsider = login("outsider")
    end = {"action": "end_price", "id": override.pk, "ended_at": TODAY}
    assert outsider.post("/prices/", end).status_code == 404
    assert (
        outsider.post("/prices/", {"action": "delete_price", "id": override.pk}).status_code == 404
    )
    assert outsider.post("/prices/", {"action": "delete_price", "id": "x' or 1"}).status_code == 404
    override.refresh_from_db()
    assert override.ended_at is None


@pytest.mark.parametrize(
    ("username", "status"), [("owner", 200), ("finance", 200), ("member", 403)]
)
def test_it_shows_the_preview_the_worker_computed_to_finance_and_admins(
    usage: World, username: str, status: int
) -> None:
    set_price_override(
        usage.tenant, provider="inhouse", model="mystery", effective_from=NOW - timedelta(days=1),
        input_per_mtok=Decimal("3"), output_per_mtok=Decimal("9"),
    )  # fmt: skip
    client = login(username)
    asked = client.post("/prices/reprice/", {"since": TODAY})
    assert asked.status_code == (302 if status == 200 else 403)
    if status != 200:
        assert not RepricePreview.objects.for_tenant(usage.tenant).exists()
        return
    waiting = client.get(asked["Location"]).content.decode()
    assert "waiting for the worker" in waiting and 'data-reload-after="2"' in waiting
    preview = RepricePreview.objects.for_tenant(usage.tenant).get()
    services.run_preview(usage.tenant.pk, preview.pk)  # what the worker does with it
    page = client.get(asked["Location"]).content.decode()
    # 1,000 input and 500 output tokens at 3 and 9 per million: 0.0075, from 0.
    assert 'data-testid="total-difference">0.007500000000<' in page
    assert "data-reload-after" not in page
    assert ('data-testid="apply"' in page) == (username == "owner")
    assert login("outsider").get(asked["Location"]).status_code == 404
    assert login("member").get(asked["Location"]).status_code == 403


def test_it_computes_one_preview_for_a_double_click_and_two_for_two_days(usage: World) -> None:
    client = login("finance")
    first = client.post("/prices/reprice/", {"since": TODAY})
    again = client.post("/prices/reprice/", {"since": TODAY})
    assert first["Location"] == again["Location"]
    yesterday = (NOW - timedelta(days=1)).date().isoformat()
    other = client.post("/prices/reprice/", {"since": yesterday})
    assert other["Location"] != first["Location"]
    previews = RepricePreview.objects.for_tenant(usage.tenant)
    assert previews.count() == 2
    for preview in previews:  # both computed, one after the other or at once
        assert services.run_preview(usage.tenant.pk, preview.pk).status == "done"
    # Once computed, the same day on the same prices is still that preview, unless asked for
    # again from it (calls may have arrived); new prices make a new one.
    assert client.post("/prices/reprice/", {"since": TODAY})["Location"] == first["Location"]
    page = client.get(first["Location"]).content.decode()
    assert 'name="again" value="1"' in page
    again = client.post("/prices/reprice/", {"since": TODAY, "again": "1"})
    assert again["Location"] != first["Location"]
    assert (
        client.post("/prices/reprice/", {"since": TODAY, "again": "1"})["Location"]
        == (
            again["Location"]  # a double click on "preview again": the one being computed
        )
    )
    services.run_preview(usage.tenant.pk, previews.order_by("-pk")[0].pk)
    set_price_override(
        usage.tenant, provider="inhouse", model="mystery", effective_from=NOW,
        input_per_mtok=Decimal("3"), output_per_mtok=Decimal("9"),
    )  # fmt: skip
    assert client.post("/prices/reprice/", {"since": TODAY})["Location"] != first["Location"]


def test_it_previews_while_the_cache_is_down(usage: World) -> None:
    client = login("finance")  # signing in counts failures in the cache: before the outage
    with override_settings(CACHES=DEAD_CACHE):
        asked = client.post("/prices/reprice/", {"since": TODAY})
        assert client.get(asked["Location"]).status_code == 200
        preview = RepricePreview.objects.for_tenant(usage.tenant).get()
        # The worker cannot write its progress: it computes the preview all the same.
        assert services.run_preview(usage.tenant.pk, preview.pk).status == "done"
        page = client.get(asked["Location"])
    assert page.status_code == 200
    assert page.content.decode().count('data-testid="preview-row"') == 1


@pytest.mark.parametrize(
    ("since", "message"),
    [("", "This field is required."), ("someday", "Enter a valid date."),
     ("2001-01-01", "before the raw-event retention"), ("2999-01-01", "is in the future")],
)  # fmt: skip
def test_it_explains_a_bad_re_price_day(usage: World, since: str, message: str) -> None:
    for response in (
        login("finance").get(f"/prices/reprice/?since={since}"),
        login("finance").post("/prices/reprice/", {"since": since}),
    ):
        assert response.status_code == 400
        assert message in response.content.decode()
    assert not RepricePreview.objects.for_tenant(usage.tenant).exists()


def test_it_refuses_to_apply_a_stale_or_unfinished_preview_and_below_admin(usage: World) -> None:
    preview, _ = services.request_preview(usage.tenant, NOW.date())
    apply = {"preview": preview.pk}
    refused = login("owner").post("/prices/reprice/apply/", apply, follow=True)
    assert "its preview is not computed yet" in refused.content.decode()
    services.run_preview(usage.tenant.pk, preview.pk)
    set_price_override(
        usage.tenant, provider="inhouse", model="mystery", effective_from=NOW,
        input_per_mtok=Decimal("3"), output_per_mtok=Decimal("9"),
    )  # fmt: skip
    assert login("finance").post("/prices/reprice/apply/", apply).status_code == 403
    response = login("owner").post("/prices/reprice/apply/", apply, follow=True)
    page = response.content.decode()
    assert "the prices changed since this preview" in page and 'data-testid="stale"' in page
    bad = login("owner").post("/prices/reprice/apply/", {"preview": "-3"}, follow=True)
    assert "preview: Ensure this value is greater than or equal to 1." in bad.content.decode()
    assert login("outsider").post("/prices/reprice/apply/", apply).status_code == 404
    assert not RepriceRun.objects.for_tenant(usage.tenant).exists()


def test_it_answers_404_for_another_tenants_re_price(usage: World) -> None:
    run = RepriceRun.objects.for_tenant(usage.tenant).create(
        tenant=usage.tenant, since=NOW.date(), requested_at=NOW, pricing_version=0
    )
    page = login("finance").get(f"/prices/reprice/{run.pk}/").content.decode()
    assert "waiting for the worker" in page and 'data-reload-after="2"' in page
    services._progress_of(run)(2500, 10000)  # what the worker reports as it prices
    assert (
        "2500 of 10000 events priced"
        in login("finance").get(f"/prices/reprice/{run.pk}/").content.decode()
    )
    assert login("outsider").get(f"/prices/reprice/{run.pk}/").status_code == 404
    assert login("member").get(f"/prices/reprice/{run.pk}/").status_code == 403


def test_it_shows_a_run_while_the_cache_is_down(usage: World) -> None:
    run = RepriceRun.objects.for_tenant(usage.tenant).create(
        tenant=usage.tenant, since=NOW.date(), requested_at=NOW, pricing_version=0
    )
    client = login("finance")  # signing in counts failures in the cache: before the outage
    with override_settings(CACHES=DEAD_CACHE):
        response = client.get(f"/prices/reprice/{run.pk}/")
    assert response.status_code == 200
    assert "waiting for the worker" in response.content.decode()


def test_it_explains_a_bad_period(usage: World) -> None:
    response = login("member").get("/prices/?start=2026-13-40&end=x")
    assert response.status_code == 200
    assert "Enter a valid date." in response.content.decode()
    far = login("member").get("/prices/?start=0001-01-01&end=9999-12-31")
    assert far.status_code == 200 and "From: must be a date between" in far.content.decode()
    assert login("member").get("/prices/?end=2001-01-01&start=2002-01-01").status_code == 200
    assert login("finance").get("/prices/reprice/99999999999999999999/").status_code == 404
    assert login("finance").get("/prices/reprice/preview/99999999999999999999/").status_code == 404
