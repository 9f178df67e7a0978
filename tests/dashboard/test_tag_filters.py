"""`tag.<key>=<value>` on every page: each figure narrows to the calls that carried that value
(`(none)`: calls without the key; `(other)`: values beyond the day's cap), the filter bar
offers each chosen key's values, and the spend chart stacks by a key or a model family.
A key the tenant does not roll up, a second key, or another tenant's key is said on the
page and changes nothing; another tenant's tag values never show."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

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
PAGES = [
    "/", "/teams/", "/teams/search/", "/features/", "/models/", "/endpoints/", "/statuses/",
    "/whatif/",
]  # fmt: skip


def _seed(world: World) -> None:
    at = (NOW - timedelta(hours=2)).isoformat()
    set_tag_dimensions(world.tenant, ["tier", "prompt"])
    set_tag_dimensions(world.other_tenant, ["tier"])
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=at, tags={"tier": "pro", "prompt": "v1"}, endpoint="/chat"),
            event(2, timestamp=at, tags={"tier": "pro"}, status_code=429, input_tokens=7000),
            event(3, timestamp=at, tags={"tier": "free"}, model="gpt-4o-mini"),
            event(4, timestamp=at, status_code=503, feature="search"),
            event(5, timestamp=at, tags={"tier": "ent"}, model="claude-3-5-sonnet-20241022",
                  provider="anthropic"),
        ],
    )  # fmt: skip
    ingest_events(world.other_ingest.key, [event(9, timestamp=at, tags={"tier": "secret-gold"})])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _spend(world: World, *ids: int) -> str:
    rows = UsageEvent.objects.for_tenant(world.tenant).filter(
        event_id__in=[f"evt-{n}" for n in ids]
    )
    return usd(rows.aggregate(c=Sum("cost_usd"))["c"])


def _card(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]*)<', html)
    assert found, testid
    return found.group(1)


def _after_bar(html: str) -> str:
    """The page below the filter bar (whose selects list every value)."""
    return html.split('aria-label="Filters"', 1)[1].split("</form>", 1)[1]


def _get(client: Client, path: str, query: str) -> str:
    page = client.get(f"{path}?{query}")
    assert page.status_code == 200, path
    return page.content.decode()


@pytest.mark.parametrize("path", [p for p in PAGES if p != "/whatif/"])
@pytest.mark.parametrize("user", ["owner", "member"])
def test_it_narrows_every_figure_of_every_page(world: World, path: str, user: str) -> None:
    _seed(world)
    client = login(user)
    everything = _get(client, path, "range=7d")
    pro = _get(client, path, "range=7d&tag.tier=pro")
    assert _card(everything, "spend") == _spend(world, 1, 2, 3, 4, 5)
    assert _card(pro, "spend") == _spend(world, 1, 2)
    assert _card(pro, "requests") == "2"
    # The untagged call, the free and enterprise ones are gone from the lists too.
    assert "gpt-4o-mini" not in _after_bar(pro)
    assert "claude-3-5-sonnet" not in _after_bar(pro)


@pytest.mark.parametrize("window", ["range=24h", "range=7d"])
def test_it_narrows_hourly_and_daily_ranges_and_the_month(world: World, window: str) -> None:
    _seed(world)
    html = _get(login("member"), "/", f"{window}&tag.tier=free")
    assert _card(html, "spend") == _spend(world, 3)
    assert _card(html, "mtd") == _spend(world, 3)


def test_it_selects_calls_without_the_key_as_none(world: World) -> None:
    _seed(world)
    html = _get(login("member"), "/", "range=7d&tag.tier=(none)")
    assert _card(html, "spend") == _spend(world, 4)
    prompt = _get(login("member"), "/", "range=7d&tag.prompt=(none)")
    assert _card(prompt, "spend") == _spend(world, 2, 3, 4, 5)


def test_it_selects_values_beyond_the_days_cap_as_other(world: World, settings: Any) -> None:
    settings.TAG_VALUES_PER_DAY = 2  # "ent" and "free" come first (in value order), "pro" not
    _seed(world)
    html = _get(login("member"), "/", "range=7d&tag.tier=(other)")
    assert _card(html, "spend") == _spend(world, 1, 2)
    assert _card(_get(login("member"), "/", "range=7d&tag.tier=pro"), "spend") == "$0.00"


def test_it_combines_a_tag_filter_with_the_other_filters(world: World) -> None:
    _seed(world)
    html = _get(login("member"), "/endpoints/", "range=7d&tag.tier=pro&status=429")
    assert _card(html, "spend") == _spend(world, 2)
    team = _get(login("member"), "/teams/search/", "range=24h&tag.tier=pro&endpoint=/chat")
    assert _card(team, "spend") == _spend(world, 1)


def test_it_keeps_the_filter_in_links_and_the_bar(world: World) -> None:
    _seed(world)
    html = _get(login("member"), "/teams/", "range=7d&tag.tier=pro")
    assert "tag.tier=pro" in html  # the team rows link to the team page with the filter
    assert '<details class="more-filters" open>' in html
    assert re.search(r'<select name="tag.tier">.*<option selected>pro</option>', html)


def test_it_offers_each_keys_values_of_the_period_and_never_another_tenants(
    world: World,
) -> None:
    _seed(world)
    html = _get(login("member"), "/", "range=7d")
    tier = re.search(r'<select name="tag.tier">(.*?)</select>', html)
    assert tier is not None
    assert re.findall(r"<option[^>]*>([^<]*)</option>", tier.group(1)) == [
        "All", "ent", "free", "pro", "(none)", "(other)",
    ]  # fmt: skip
    assert '<details class="more-filters">' in html  # closed: nothing in it is set
    assert "secret-gold" not in html
    outsider = _get(login("outsider"), "/", "range=7d&tag.tier=pro")
    assert "secret-gold" in outsider and "ent" not in re.findall(
        r"<option>(\w+)</option>", outsider
    )
    assert _card(outsider, "spend") == "$0.00"


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("tag.region=eu", "tag.region: not a tag dimension of this tenant (chosen: prompt, tier)"),
        ("tag.tier=pro&tag.prompt=v1", "tag.tier: one tag filter at a time"),
        ("tag.tier=pro&stack=tag:prompt", "stack: tag:prompt cannot be drawn"),
    ],
)
def test_it_says_what_it_left_out(world: World, query: str, said: str) -> None:
    _seed(world)
    html = _get(login("member"), "/", f"range=7d&{query}")
    assert said in html
    expected = _spend(world, 1, 2, 3, 4, 5) if "region" in query else _spend(world, 1)
    if "stack" in query:
        expected = _spend(world, 1, 2)
    assert _card(html, "spend") == expected


def test_it_ignores_another_tenants_key(world: World) -> None:
    set_tag_dimensions(world.other_tenant, ["secretkey"])
    _seed(world)
    html = _get(login("member"), "/", "range=7d&tag.secretkey=x&stack=tag:secretkey")
    assert "not a tag dimension of this tenant" in html
    assert _card(html, "spend") == _spend(world, 1, 2, 3, 4, 5)
    assert "tag:secretkey" not in html.split("</h1>")[1].split("<p class")[0]


def test_it_drops_a_filter_on_another_key_on_a_tag_page(world: World) -> None:
    _seed(world)
    html = _get(login("member"), "/tags/prompt/", "range=7d&tag.tier=pro")
    assert "a filter on another tag key cannot narrow the values of prompt" in html
    same = _get(login("member"), "/tags/tier/", "range=7d&tag.tier=pro")
    assert "pro" in same and ">free<" not in _after_bar(same)


def test_it_says_the_consumer_lists_are_not_narrowed(world: World) -> None:
    _seed(world)
    for path in ("/", "/consumers/", "/teams/search/"):
        html = _get(login("member"), path, "range=7d&tag.tier=pro")
        assert "these filters do not apply to them: tag.tier" in html, path
    assert 'data-testid="consumer-note"' not in _get(login("member"), "/", "range=7d")


def test_it_narrows_the_whatif_comparison(world: World) -> None:
    _seed(world)
    html = _get(login("member"), "/whatif/", "range=7d&tag.tier=pro")
    assert " 2 calls " in html
    assert 'name="tag.tier" value="pro"' in html  # kept when the form is sent again
    api = Client().get("/api/v1/whatif?tag.tier=free", **world.read.auth)
    assert api.status_code == 200 and api.json()["requests"] == 1


def _series(html: str) -> list[str]:
    """The spend chart's series names (its figure is a json_script with id "spend")."""
    found = re.search(r'<script id="spend" type="application/json">(.*?)</script>', html)
    assert found
    return [trace["name"] for trace in json.loads(found.group(1))["data"]]


def test_it_stacks_spend_by_a_tag_key_and_by_model_family(world: World) -> None:
    _seed(world)
    by_tag = _get(login("member"), "/", "range=7d&stack=tag:tier")
    assert set(_series(by_tag)) == {"pro", "free", "ent", "(none)"}
    assert "<option selected>tag:tier</option>" in by_tag
    by_family = _get(login("member"), "/", "range=7d&stack=model_family")
    assert {"GPT-4o", "Claude 3.5"} <= set(_series(by_family))
    filtered = _get(login("member"), "/", "range=7d&stack=tag:tier&tag.tier=pro")
    assert set(_series(filtered)) == {"pro"}
