"""The settings page: admins only; keys and channels; another tenant's ids are 404."""

from __future__ import annotations

import re

import pytest

from alerts.delivery import attempt_delivery
from alerts.models import AlertChannel, Delivery
from pricing.models import PriceOverride
from tenants.models import ApiKey
from tests.conftest import World, event, login, post_json
from tests.httpcapture import capture_server


@pytest.mark.parametrize(
    ("username", "status"), [("owner", 200), ("finance", 403), ("member", 403)]
)
def test_it_lets_only_admins_in(world: World, username: str, status: int) -> None:
    assert login(username).get("/settings/").status_code == status


def test_it_shows_a_new_key_once_and_it_works(world: World) -> None:
    client = login("owner")
    page = client.post(
        "/settings/",
        {"action": "create_key", "name": "billing-svc", "scope": "ingest", "team": world.team.pk},
    ).content.decode()
    shown = re.search(r"<code>(cb_[^<]+)</code>", page)
    assert shown
    token = shown.group(1)
    assert "never shown again" in page
    assert (
        post_json(
            client, "/api/v1/events", event(1), None, HTTP_AUTHORIZATION=f"Bearer {token}"
        ).status_code
        == 202
    )
    assert token not in client.get("/settings/").content.decode()


def test_it_revokes_keys_of_its_own_tenant_only(world: World) -> None:
    client = login("owner")
    assert (
        client.post(
            "/settings/", {"action": "revoke_key", "id": world.other_ingest.key.pk}
        ).status_code
        == 404
    )
    client.post("/settings/", {"action": "revoke_key", "id": world.ingest.key.pk})
    assert (
        ApiKey.objects.for_tenant(world.tenant).get(pk=world.ingest.key.pk).revoked_at is not None
    )
    assert (
        ApiKey.objects.for_tenant(world.other_tenant).get(pk=world.other_ingest.key.pk).revoked_at
        is None
    )


def test_it_sends_prices_to_the_prices_page(world: World) -> None:
    client = login("owner")
    assert 'href="/prices/"' in client.get("/settings/").content.decode()
    price = {"action": "add_price", "provider": "openai", "model": "gpt-4o"}
    client.post("/settings/", {**price, "effective_from": "2026-01-01", "input_per_mtok": "2"})
    assert not PriceOverride.objects.for_tenant(world.tenant).exists()  # the form moved


def test_it_explains_a_bad_channel(world: World) -> None:
    page = (
        login("owner")
        .post(
            "/settings/",
            {"action": "add_channel", "name": "x", "kind": "webhook", "target": "ftp://x"},
        )
        .content.decode()
    )
    assert "http(s) URL" in page and "routing key or secret" in page
    assert not AlertChannel.objects.for_tenant(world.tenant).exists()


@pytest.mark.usefixtures("loopback_receivers")
def test_it_sends_a_test_alert_and_shows_the_delivery(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client = login("owner")
    with capture_server() as slack:
        client.post(
            "/settings/",
            {"action": "add_channel", "name": "ops-slack", "kind": "slack", "target": slack.url},
        )
        channel = AlertChannel.objects.for_tenant(world.tenant).get()
        client.post("/settings/", {"action": "test_channel", "id": channel.pk})
        delivery = Delivery.objects.for_tenant(world.tenant).get()
        attempt_delivery(world.tenant.pk, delivery.pk, final=False)
    assert slack.requests[0].json()["text"] == "Test alert for ops-slack"
    page = client.get("/settings/").content.decode()
    assert "Test alert for ops-slack" in page and "sent" in page
    assert client.post("/settings/", {"action": "test_channel", "id": 999999}).status_code == 404
