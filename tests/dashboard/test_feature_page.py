"""A feature's page (/features/<name>/): its spend, calls and breakdowns by team, model,
endpoint, status class, model family and chosen tag key add up to its raw events under the
page filters; viewers see it, another tenant's features are 404 and their numbers never show,
and any name a client may send (slashes, spaces, `%`, markup, any script) has a working,
escaped page and link."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum

from dashboard import feature_pages
from dashboard.templatetags.costboard import usd
from ingest.models import UsageEvent
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from rollups.tags import set_tag_dimensions
from tenants.models import Scope
from tenants.services import create_api_key, create_team
from tests.conftest import World, event, login

NOW = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)
AT = (NOW - timedelta(hours=2)).isoformat()
HOSTILE = [
    "checkout/../admin summary",
    "<script>alert('x')</script>",
    "résumé 日本語 ✓",
    "100% off?utm=1#top",
    "trailing/",
]
# A browser folds these path segments, encoded or not: no link, but the page still answers.
DOTS = [".", ".."]


def _seed(world: World) -> None:
    set_tag_dimensions(world.tenant, ["tier"])
    triage = {"timestamp": AT, "feature": "triage"}
    ingest_events(
        world.ingest.key,
        [
            event(1, **triage, endpoint="/chat", tags={"tier": "pro"}),
            event(2, **triage, endpoint="/chat", status_code=429, tags={"tier": "pro"}),
            event(3, **triage, endpoint="/find", model="gpt-4o-mini", tags={"tier": "free"}),
            event(5, timestamp=AT, feature="summaries", endpoint="/other-feature"),
        ],
    )
    support, _ = create_api_key(
        world.tenant, team=create_team(world.tenant, "support", "Support"), scope=Scope.INGEST
    )
    ingest_events(support, [event(4, **triage, endpoint="/find", status_code=503)])
    ingest_events(
        world.other_ingest.key,
        [
            event(8, timestamp=AT, feature="triage", endpoint="/globex-only"),
            event(9, timestamp=AT, feature="globex-secret", endpoint="/globex-secret"),
        ],
    )
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _table(html: str, caption: str) -> dict[str, list[str]]:
    """First cell's text → the other cells, of the table with this caption."""
    found = re.search(rf"<caption>{re.escape(caption)}</caption>(.*?)</table>", html, re.S)
    assert found, f"no table {caption!r}"
    rows = re.findall(r"<tr><td>(?:<a [^>]*>)?([^<]*)(?:</a>)?</td>(.*?)</tr>", found.group(1))
    cell = r'<td class="num[^"]*">(?:<span[^>]*></span>)?([^<]*)</td>'
    return {name: re.findall(cell, rest) for name, rest in rows}


def _spend(world: World, **where: object) -> str:
    rows = UsageEvent.objects.for_tenant(world.tenant).filter(**where)
    return usd(rows.aggregate(c=Sum("cost_usd"))["c"])


def _card(html: str) -> str:
    found = re.search(r'data-testid="spend">([^<]*)<', html)
    assert found
    return found.group(1)


@pytest.mark.parametrize("window", ["range=7d", "range=24h"])
@pytest.mark.parametrize("user", ["owner", "member"])
def test_it_shows_a_features_spend_broken_down_as_its_events_add_up(
    world: World, window: str, user: str
) -> None:
    _seed(world)
    page = login(user).get(f"/features/triage/?{window}")
    assert page.status_code == 200
    html = page.content.decode()
    assert _card(html) == _spend(world, feature="triage")
    teams = _table(html, "Teams")
    assert set(teams) == {"search", "support"}
    assert teams["search"][0] == _spend(world, feature="triage", team=world.team)
    models = _table(html, "Models")
    assert models["openai/gpt-4o-mini"][0] == _spend(world, feature="triage", model="gpt-4o-mini")
    endpoints = _table(html, "Endpoints")
    assert set(endpoints) == {"/chat", "/find"}  # not the other feature's, nor Globex's
    assert endpoints["/find"][0] == _spend(world, feature="triage", endpoint="/find")
    statuses = _table(html, "Status classes")
    assert set(statuses) == {"2xx success", "429 rate limited", "5xx server error"}
    assert statuses["5xx server error"][0] == _spend(world, event_id="evt-4")
    families = _table(html, "Model families")
    assert families["GPT-4o mini"][0] == _spend(world, feature="triage", model="gpt-4o-mini")
    tiers = _table(html, "Tag: tier")
    assert set(tiers) == {"pro", "free", "(none)"}
    assert tiers["pro"][0] == _spend(world, event_id__in=["evt-1", "evt-2"])
    assert 'aria-label="Spend over time by model"' in html  # stacked by model unless asked
    assert 'data-testid="mtd"' in html and 'data-figure="quality"' in html
    assert 'href="/whatif/?range=' in html and "feature=triage" in html


def test_it_stacks_by_what_the_page_asks(world: World) -> None:
    _seed(world)
    html = login("member").get("/features/triage/?range=7d&stack=team").content.decode()
    assert 'aria-label="Spend over time by team"' in html


def test_it_narrows_the_feature_to_the_page_filters(world: World) -> None:
    _seed(world)
    html = login("member").get("/features/triage/?range=7d&endpoint=/find").content.decode()
    assert _card(html) == _spend(world, feature="triage", endpoint="/find")
    assert set(_table(html, "Endpoints")) == {"/find"}
    html = login("member").get("/features/triage/?range=7d&model=gpt-4o-mini").content.decode()
    assert _card(html) == _spend(world, feature="triage", model="gpt-4o-mini")
    assert set(_table(html, "Tag: tier")) == {"free"}


def test_it_leads_the_filter_bars_feature_choice_to_that_features_page(world: World) -> None:
    _seed(world)
    client = login("member")
    moved = client.get("/features/triage/?range=7d&feature=summaries&stack=team")
    assert moved.status_code == 302
    assert moved["Location"] == "/features/summaries/?range=7d&stack=team"
    everything = client.get("/features/triage/?range=7d&feature=")
    assert everything["Location"] == "/features/?range=7d"


def test_it_links_the_features_breakdown_and_the_overview_to_feature_pages(
    world: World,
) -> None:
    _seed(world)
    client = login("member")
    html = client.get("/features/?range=7d&model=gpt-4o&stack=team").content.decode()
    assert '<a href="/features/triage/?range=7d&amp;model=gpt-4o">triage</a>' in html
    html = client.get("/?range=7d").content.decode()
    assert '<a href="/features/summaries/?range=7d">summaries</a>' in html


def test_it_shows_an_outsider_nothing_of_another_tenants_feature(world: World) -> None:
    _seed(world)
    outsider = login("outsider")
    assert outsider.get("/features/summaries/").status_code == 404  # Acme's only
    assert login("member").get("/features/globex-secret/").status_code == 404  # Globex's only
    assert login("member").get("/features/never-called/").status_code == 404
    html = outsider.get("/features/triage/?range=7d").content.decode()  # both have a triage
    assert set(_table(html, "Endpoints")) == {"/globex-only"}
    assert "/chat" not in html and "/find" not in html and "Tag: tier" not in html
    assert _card(html) == usd(
        UsageEvent.objects.for_tenant(world.other_tenant)
        .filter(feature="triage")
        .aggregate(c=Sum("cost_usd"))["c"]
    )


@pytest.mark.parametrize(
    "path", ["/features/" + "x" * 300 + "/", "/features/%00/", "/features/a%00b/", "/features//"]
)
def test_it_answers_a_name_no_call_can_carry_with_404(world: World, path: str) -> None:
    assert login("member").get(path).status_code == 404


def test_it_gives_any_feature_name_a_working_escaped_page_and_link(world: World) -> None:
    ingest_events(
        world.ingest.key, [event(n, timestamp=AT, feature=name) for n, name in enumerate(HOSTILE)]
    )
    roll_up_all_pending(world.tenant.pk)
    client = login("member")
    listing = client.get("/features/?range=7d").content.decode()
    assert "<script>alert" not in listing
    for n, name in enumerate(HOSTILE):
        path = feature_pages.path(name)
        assert f'href="{path}?range=7d"' in listing.replace("&amp;", "&")
        page = client.get(f"{path}?range=7d")
        assert page.status_code == 200, name
        html = page.content.decode()
        assert "<script>alert" not in html
        assert _card(html) == _spend(world, event_id=f"evt-{n}")
    assert feature_pages.path("checkout/../admin summary") == (
        "/features/checkout%2F..%2Fadmin%20summary/"
    )


def test_it_answers_dot_names_without_linking_them(world: World) -> None:
    ingest_events(world.ingest.key, [event(n, timestamp=AT, feature=d) for n, d in enumerate(DOTS)])
    roll_up_all_pending(world.tenant.pk)
    client = login("member")
    listing = client.get("/features/?range=7d").content.decode()
    assert set(_table(listing, "Features")) == set(DOTS)
    assert all(f'href="/features/{name}/' not in listing for name in DOTS)
    for n, name in enumerate(DOTS):
        html = client.get(f"/features/{name}/?range=7d").content.decode()
        assert _card(html) == _spend(world, event_id=f"evt-{n}")


def test_it_spans_an_empty_breakdown_row_over_every_column(world: World) -> None:
    """A period without calls after one with some still draws the tables, empty."""
    before = (NOW - timedelta(days=10)).isoformat()
    ingest_events(world.ingest.key, [event(1, timestamp=before, feature="triage")])
    roll_up_all_pending(world.tenant.pk)
    client = login("member")
    for path in ("/endpoints/?range=7d", "/teams/?range=7d", "/features/?range=7d"):
        html = client.get(path).content.decode()
        table = re.search(r"<table class=\"rows\">(.*?)</table>", html, re.S)
        assert table, path
        span = re.search(r'colspan="(\d+)"[^>]*>Nothing in this period', table.group(1))
        assert span and int(span.group(1)) == table.group(1).count("<th "), path


def test_it_narrows_the_feature_to_a_tag_filter_and_lists_only_that_key(world: World) -> None:
    _seed(world)
    html = login("member").get("/features/triage/?range=7d&tag.tier=pro").content.decode()
    assert _card(html) == _spend(world, event_id__in=["evt-1", "evt-2"])
    assert set(_table(html, "Tag: tier")) == {"pro"}
    assert set(_table(html, "Endpoints")) == {"/chat"}


def test_it_opens_the_what_if_page_of_the_feature(world: World) -> None:
    _seed(world)
    client = login("member")
    html = client.get("/features/triage/?range=7d").content.decode()
    link = re.search(r'href="(/whatif/[^"]*)" data-testid="whatif-link"', html)
    assert link and "feature=triage" in link.group(1)
    assert client.get(link.group(1).replace("&amp;", "&")).status_code == 200
