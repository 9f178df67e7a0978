"""The figures a tag filter and the new stacks leave on the pages not covered by
test_tag_filters.py: the spend chart's stacks add up to the page's total (by model family, by
a tag key, on the overview and a team's page, with and without a tag filter); the consumers
page says its per-user lists are not narrowed; a tag page and the
what-if comparison narrow to the value; another tenant's keys and values stay out of sight."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.test import Client

from dashboard.templatetags.costboard import usd
from ingest.models import UsageEvent
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from rollups.tags import set_tag_dimensions
from tests.conftest import World, event, login

NOW = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)


def _seed(world: World) -> None:
    """Calls over three days (so a 7-day chart has several bars), two teams' worth of
    features, three model families, tagged, untagged and on another tenant."""
    set_tag_dimensions(world.tenant, ["tier", "prompt"])
    set_tag_dimensions(world.other_tenant, ["tier", "region"])
    calls = []
    for day in range(3):
        at = (NOW - timedelta(days=day, hours=1)).isoformat()
        n = day * 10
        calls += [
            event(n + 1, timestamp=at, tags={"tier": "pro", "prompt": "v1"}),
            event(n + 2, timestamp=at, tags={"tier": "pro"}, model="gpt-4o-mini"),
            event(n + 3, timestamp=at, tags={"tier": "free"}, output_tokens=3000),
            event(n + 4, timestamp=at, feature="search", user_id="u-untagged"),
            event(n + 5, timestamp=at, tags={"tier": "ent"}, provider="anthropic",
                  model="claude-3-5-sonnet-20241022", user_id="u-ent"),
        ]  # fmt: skip
    ingest_events(world.ingest.key, calls)
    at = (NOW - timedelta(hours=1)).isoformat()
    ingest_events(
        world.other_ingest.key,
        [event(99, timestamp=at, tags={"tier": "secret-gold", "region": "mars"})],
    )
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _cost(world: World, **where: object) -> Decimal:
    rows = UsageEvent.objects.for_tenant(world.tenant).filter(**where)
    return rows.aggregate(c=Sum("cost_usd"))["c"] or Decimal(0)


def _page(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, url
    return page.content.decode()


def _card(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]*)<', html)
    assert found, testid
    return found.group(1)


def _stacks(html: str) -> dict[str, Decimal]:
    """Each series of the spend chart and the sum of its bars."""
    found = re.search(r'<script id="spend" type="application/json">(.*?)</script>', html)
    assert found
    traces = json.loads(found.group(1))["data"]
    return {t["name"]: sum((Decimal(y) for y in t["y"]), Decimal(0)) for t in traces}


@pytest.mark.parametrize("user", ["owner", "member"])
@pytest.mark.parametrize(
    ("query", "events", "names"),
    [
        ("stack=model_family", {}, {"GPT-4o", "GPT-4o mini", "Claude 3.5"}),
        ("stack=tag:tier", {}, {"pro", "free", "ent", "(none)"}),
        ("stack=tag:prompt", {}, {"v1", "(none)"}),
        ("stack=model_family&tag.tier=pro", {"tags__tier": "pro"}, {"GPT-4o", "GPT-4o mini"}),
        ("stack=tag:tier&tag.tier=(none)", {"tags__tier__isnull": True}, {"(none)"}),
    ],
)
def test_it_stacks_the_overview_so_the_bars_add_up_to_the_total(
    world: World, user: str, query: str, events: dict[str, object], names: set[str]
) -> None:
    _seed(world)
    html = _page(login(user), f"/?range=7d&{query}")
    stacks = _stacks(html)
    assert set(stacks) == names
    total = _cost(world, **events)
    # The chart rounds each bar to the cent; the card shows the exact total rounded once.
    assert abs(sum(stacks.values(), Decimal(0)) - total) <= Decimal("0.01") * 3 * len(stacks)
    assert _card(html, "spend") == usd(total)
    assert "secret-gold" not in html and "mars" not in html


def test_it_stacks_a_teams_page_by_a_tag_key_within_the_team(world: World) -> None:
    _seed(world)
    html = _page(login("member"), "/teams/search/?range=7d&stack=tag:tier")
    stacks = _stacks(html)
    assert set(stacks) == {"pro", "free", "ent", "(none)"}
    total = _cost(world, team_id=world.team.pk)
    assert abs(sum(stacks.values(), Decimal(0)) - total) <= Decimal("0.12")
    assert _card(html, "spend") == usd(total)


def test_it_says_the_consumers_lists_are_not_narrowed_by_a_tag(world: World) -> None:
    _seed(world)
    html = _page(login("member"), "/consumers/?range=7d&tag.tier=ent")
    note = 'data-testid="consumer-note"'
    assert note in html and "do not apply to them: tag.tier" in html
    # The lists are the period's users, all of them, under the note that says so.
    assert "u-untagged" in html.split(note, 1)[1] and "u-ent" in html.split(note, 1)[1]
    for path in ("/", "/teams/search/"):
        page = _page(login("member"), f"{path}?range=7d&tag.tier=ent")
        assert "end users (not every filter applies: see the note below)" in page.lower()
        assert "u-untagged" in page and note in page
        plain = _page(login("member"), f"{path}?range=7d")
        assert "not every filter applies" not in plain and note not in plain


def test_it_narrows_a_tag_page_to_the_filtered_value(world: World) -> None:
    _seed(world)
    html = _page(login("member"), "/tags/tier/?range=7d&tag.tier=free")
    assert _card(html, "spend") == usd(_cost(world, tags__tier="free"))
    assert _card(html, "requests") == "3"


def test_it_reprices_only_the_filtered_calls_on_the_whatif_page(world: World) -> None:
    _seed(world)
    api = Client().get("/api/v1/whatif?range=7d&tag.tier=pro", **world.read.auth)
    assert api.status_code == 200
    answer = api.json()
    assert answer["requests"] == 6
    assert Decimal(answer["actual"]["cost_usd"]) == _cost(world, tags__tier="pro")
    html = _page(login("member"), "/whatif/?range=7d&tag.tier=pro")
    assert " 6 calls " in html


@pytest.mark.parametrize(
    "query",
    ["tag.region=mars", "stack=tag:region", "tag.tier=secret-gold", "tag.tier=", "tag.=x"],
)
def test_it_never_shows_another_tenants_keys_or_values(world: World, query: str) -> None:
    _seed(world)
    html = _page(login("member"), f"/?range=7d&{query}")
    bar = html.split('aria-label="Filters"', 1)[1].split("</form>", 1)[0]
    assert "mars" not in bar and "region" not in bar
    if query == "tag.tier=secret-gold":
        # Our own key, a value we never saw: nothing matches, and the value stays selectable.
        assert _card(html, "spend") == "$0.00"
        assert "<option selected>secret-gold</option>" in bar
    else:
        assert _card(html, "spend") == usd(_cost(world))
        assert "secret-gold" not in html
    if query.startswith("tag.region"):  # a stack it cannot draw keeps the default, quietly
        assert "not a tag dimension of this tenant" in html


def test_it_keeps_another_tenants_tag_page_out_of_reach(world: World) -> None:
    _seed(world)
    assert login("member").get("/tags/region/?range=7d").status_code == 404
    assert login("outsider").get("/tags/prompt/?range=7d").status_code == 404
    outsider = _page(login("outsider"), "/?range=7d&tag.prompt=v1")
    assert "tag.prompt: not a tag dimension of this tenant (chosen: region, tier)" in outsider
    assert ">v1<" not in outsider and ">pro<" not in outsider


def test_it_names_unpriced_models_only_of_the_filtered_value(world: World) -> None:
    set_tag_dimensions(world.tenant, ["tier"])
    at = (NOW - timedelta(hours=3)).isoformat()
    before = (NOW - timedelta(days=9)).isoformat()
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=at, tags={"tier": "pro"}, provider="acme", model="mystery"),
            event(2, timestamp=at, tags={"tier": "free"}),
            event(3, timestamp=before, tags={"tier": "free"}),
            event(4, timestamp=before, tags={"tier": "free"}),
        ],
    )
    roll_up_all_pending(world.tenant.pk)
    pro = _page(login("member"), "/?range=7d&tag.tier=pro")
    assert 'data-testid="unpriced-banner"' in pro and "acme/mystery" in pro
    free = _page(login("member"), "/models/?range=7d&tag.tier=free")
    assert 'data-testid="unpriced-banner"' not in free
    # The previous 7 days hold two free calls and no pro one.
    earlier = usd(_cost(world, event_id__in=["evt-3", "evt-4"]))
    assert f"vs previous: {earlier}<" in free
    assert "vs previous: —<" in pro


@pytest.mark.parametrize(
    "query",
    ["tag.tier=%00", f"tag.tier={'x' * 5000}", "tag.%00=x", "stack=tag:%00", "tag.tier=%ED%A0%80"],
)
@pytest.mark.parametrize("path", ["/", "/tags/tier/", "/consumers/", "/whatif/", "/teams/search/"])
def test_it_answers_odd_tag_parameters_with_a_page(world: World, path: str, query: str) -> None:
    _seed(world)
    page = login("member").get(f"{path}?range=7d&{query}")
    assert page.status_code == 200
