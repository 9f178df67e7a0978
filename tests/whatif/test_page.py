"""`/whatif/`: who may open it, what it shows, and a bad link answered with a message."""

from __future__ import annotations

from django.test import Client

from tests.conftest import World, login
from tests.whatif.test_api import QUERY, _month

PAGE = f"/whatif/?range=custom&{QUERY}"


def test_it_shows_a_viewer_the_comparison_with_a_link_to_share(world: World) -> None:
    _month(world)
    for user in ("owner", "finance", "member"):
        response = login(user).get(f"{PAGE}&models=openai/gpt-4o-mini,anthropic/claude-3-5-haiku")
        assert response.status_code == 200, user
        body = response.content.decode()
        assert "openai/gpt-4o-mini" in body and "anthropic/claude-3-5-haiku" in body
        assert "41 calls" in body
        assert "models=openai/gpt-4o-mini%2Canthropic/claude-3-5-haiku" in body
        assert "bills cached tokens as plain input" in body
        assert 'Catalog prices: <span data-testid="catalog-date">bundled with genai-prices' in body


def test_it_offers_the_seed_models_when_the_link_names_none(world: World) -> None:
    _month(world)
    body = login("member").get(PAGE).content.decode()
    for name in ("anthropic/claude-3-5-sonnet", "openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"):
        assert name in body
    assert 'data-figure="whatif"' in body


def test_it_shows_an_outsider_nothing_of_another_tenant(world: World) -> None:
    _month(world)
    body = login("outsider").get(f"{PAGE}&feature=chat").content.decode()
    assert "41 calls" not in body and "0 calls" in body
    assert "No usage in this view yet" in body


def test_it_sends_a_signed_out_visitor_to_sign_in(world: World) -> None:
    response = Client().get("/whatif/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_names_the_bad_models_field_instead_of_failing(world: World) -> None:
    client = login("member")
    for models in ("gpt-4o", "nobody/such-model", "%00/%00"):
        response = client.get(f"/whatif/?models={models}")
        assert response.status_code == 400
        assert "Models:" in response.content.decode()
