"""A team's page breaks its spend down by endpoint, model family and status class: the
numbers are the team's raw events' sums, other teams' and tenants' calls stay out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from dashboard.templatetags.costboard import usd
from ingest.models import UsageEvent
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from rollups.tags import set_tag_dimensions
from tests.conftest import World, event, login

NOW = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)


def _seed(world: World) -> None:
    at = (NOW - timedelta(hours=2)).isoformat()
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=at, team="search", endpoint="/chat", status_code=200),
            event(2, timestamp=at, team="search", endpoint="/chat", status_code=429),
            event(3, timestamp=at, team="search", endpoint="/find", model="gpt-4o-2024-08-06"),
            event(4, timestamp=at, team="search", endpoint="/find", model="gpt-4o-mini"),
            event(5, timestamp=at, team="support", endpoint="/other-team", status_code=503),
        ],
    )
    ingest_events(world.other_ingest.key, [event(9, timestamp=at, team="search", endpoint="/g")])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _table(html: str, caption: str) -> dict[str, list[str]]:
    """First cell → the other cells, of the table with this caption."""
    found = re.search(rf"<caption>{re.escape(caption)}</caption>(.*?)</table>", html, re.S)
    assert found, f"no table {caption!r}"
    rows = re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", found.group(1))
    cell = r'<td class="num[^"]*">(?:<span[^>]*></span>)?([^<]*)</td>'
    return {name: re.findall(cell, rest) for name, rest in rows}


def _spend(world: World, **where: object) -> Decimal:
    rows = UsageEvent.objects.for_tenant(world.tenant).filter(team=world.team, **where)
    return rows.aggregate(c=Sum("cost_usd"))["c"]


@pytest.mark.parametrize("window", ["range=7d", "range=24h"])
@pytest.mark.parametrize("user", ["owner", "member"])
def test_it_breaks_a_teams_spend_down_by_endpoint_family_and_status(
    world: World, window: str, user: str
) -> None:
    _seed(world)
    html = login(user).get(f"/teams/search/?{window}").content.decode()
    endpoints = _table(html, "Endpoints")
    assert set(endpoints) == {"/chat", "/find"}
    assert endpoints["/find"][0] == usd(_spend(world, endpoint="/find"))
    families = _table(html, "Model families")
    assert set(families) == {"GPT-4o", "GPT-4o mini"}
    four_o = _spend(world, model__in=["gpt-4o", "gpt-4o-2024-08-06"])
    assert families["GPT-4o"][0] == usd(four_o)
    statuses = _table(html, "Status classes")
    assert set(statuses) == {"2xx success", "429 rate limited"}
    assert statuses["429 rate limited"][0] == usd(_spend(world, status_code=429))


def test_it_shows_an_outsider_none_of_the_teams_breakdowns(world: World) -> None:
    _seed(world)
    html = login("outsider").get("/teams/search/?range=7d").content.decode()
    assert set(_table(html, "Endpoints")) == {"/g"}
    assert "/chat" not in html and "/find" not in html


def test_it_breaks_a_teams_spend_down_by_each_chosen_tag_key(world: World) -> None:
    set_tag_dimensions(world.tenant, ["tier"])
    set_tag_dimensions(world.other_tenant, ["region"])
    at = (NOW - timedelta(hours=2)).isoformat()
    ingest_events(
        world.ingest.key,
        [event(1, timestamp=at, tags={"tier": "pro"}), event(2, timestamp=at, model="gpt-4o-mini")],
    )
    ingest_events(world.other_ingest.key, [event(9, timestamp=at, tags={"region": "secret-eu"})])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)
    tiers = _table(login("member").get("/teams/search/?range=7d").content.decode(), "Tag: tier")
    assert set(tiers) == {"pro", "(none)"}
    assert tiers["pro"][0] == usd(_spend(world, event_id="evt-1"))
    html = login("outsider").get("/teams/search/?range=7d").content.decode()
    assert set(_table(html, "Tag: region")) == {"secret-eu"} and "Tag: tier" not in html
