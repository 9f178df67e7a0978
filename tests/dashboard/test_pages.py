"""Pages: who may open them, what they show, and that filters change the numbers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from tenants.models import Role
from tenants.services import add_member, create_team
from tests.conftest import World, event, login

PAGES = ["/", "/teams/", "/teams/search/", "/features/", "/models/", "/consumers/"]
NOW = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)


def _seed(world: World) -> None:
    create_team(world.tenant, "support", "Support", "CC-2")
    yesterday = (NOW - timedelta(days=1)).isoformat()
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=yesterday, feature="chat", user_id="ann"),  # $0.0075 at gpt-4o
            event(2, timestamp=yesterday, feature="rag", team="support", environment="staging"),
            event(3, timestamp=NOW.isoformat(), feature="chat", provider="acme", model="mystery"),
        ],
    )
    ingest_events(world.other_ingest.key, [event(9, timestamp=yesterday, feature="globex-secret")])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("username", ["owner", "finance", "member"])
def test_it_shows_every_dashboard_to_every_role(world: World, path: str, username: str) -> None:
    _seed(world)
    response = login(username).get(path)
    assert response.status_code == 200
    assert b"globex-secret" not in response.content


@pytest.mark.parametrize("path", PAGES)
def test_it_sends_signed_out_people_to_the_login(world: World, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_answers_404_for_another_tenants_team(world: World) -> None:
    create_team(world.other_tenant, "globex-only")
    assert login("member").get("/teams/globex-only/").status_code == 404
    assert login("outsider").get("/teams/globex-only/").status_code == 200


def test_it_answers_404_to_someone_in_no_tenant(world: World) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("drifter", password="correct-horse-battery")
    assert login("drifter").get("/").status_code == 404


def test_it_shows_spend_top_lists_and_the_unpriced_banner(world: World) -> None:
    _seed(world)
    page = login("member").get("/?range=7d").content.decode()
    assert 'data-testid="spend">$0.02<' in page  # 2 x $0.0075, rounded to cents
    assert "acme/mystery" in page and "Unpriced usage" in page
    assert "support" in page
    script = re.search(r'<script id="spend" type="application/json">(.*?)</script>', page, re.S)
    assert script
    figure = json.loads(script.group(1))
    assert {trace["name"] for trace in figure["data"]} == {"search", "support"}


def test_it_applies_the_filters_from_the_query_string(world: World) -> None:
    _seed(world)
    client = login("member")
    staging = client.get("/?range=7d&environment=staging").content.decode()
    assert re.search(r'data-testid="requests">1<', staging)
    by_team = client.get("/?range=7d&team=search").content.decode()
    assert re.search(r'data-testid="requests">2<', by_team)
    last_24h = client.get("/?range=24h").content.decode()
    assert re.search(r'data-testid="requests">1<', last_24h)
    nothing = client.get("/?range=custom&from=2020-01-01&to=2020-01-31").content.decode()
    assert "No usage in this view yet" in nothing


def test_it_shows_a_welcome_for_a_new_tenant(world: World) -> None:
    page = login("member").get("/").content.decode()
    assert "No usage in this view yet" in page and "create_api_key acme" in page


def test_it_lists_teams_with_cost_centers_and_links(world: World) -> None:
    _seed(world)
    page = login("member").get("/teams/?range=7d").content.decode()
    assert "CC-2" in page and 'href="/teams/support/?' in page


def test_it_lets_a_person_switch_between_their_tenants(world: World) -> None:
    _seed(world)
    add_member(world.other_tenant, "member", Role.VIEWER)
    client = login("member")
    assert b"globex-secret" not in client.get("/features/?range=7d").content
    client.post("/tenant/switch/", {"tenant": "globex"})
    assert b"globex-secret" in client.get("/features/?range=7d").content
    # A tenant the person is not in cannot be switched to.
    assert client.post("/tenant/switch/", {"tenant": "nope"}).status_code == 404


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
def test_it_keeps_hostile_names_inert_on_every_page(world: World, name: str) -> None:
    ingest_events(world.ingest.key, [event(1, feature=name, user_id=name, model=name)])
    roll_up_all_pending(world.tenant.pk)
    client = login("member")
    for path in [*PAGES, f"/?stack=feature&feature={name}"]:
        page = client.get(path).content.decode()
        assert "<script>alert(1)" not in page and "<img src=x" not in page, path
        for blob in re.findall(r'type="application/json">(.*?)</script>', page, re.S):
            assert "<" not in blob  # json_script escapes < as \\u003C inside figures
            assert "<script" not in json.dumps(json.loads(blob))  # labels are HTML-escaped


def test_it_keeps_the_chosen_filters_selected_in_the_filter_bar(world: World) -> None:
    _seed(world)
    page = login("member").get("/?range=7d&feature=rag&environment=staging").content.decode()
    assert "<option selected>rag</option>" in page and "<option>chat</option>" in page
    assert "<option selected>staging</option>" in page
    assert "<option>support</option>" in page  # a team, not chosen
