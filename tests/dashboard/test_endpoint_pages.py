"""The endpoints and status-class pages: per endpoint and per status class, the spend and
calls the raw events add up to, and the shares of errors, 429s and 5xx; viewers see them,
another tenant sees none of it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from dashboard.templatetags.costboard import usd
from ingest.models import UsageEvent
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from tests.conftest import World, event, login

NOW = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)


def _seed(world: World) -> None:
    at = (NOW - timedelta(hours=2)).isoformat()
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=at, endpoint="/chat", status_code=200),
            event(2, timestamp=at, endpoint="/chat", status_code=429),
            event(3, timestamp=at, endpoint="/chat", status_code=429, model="gpt-4o-mini"),
            event(4, timestamp=at, endpoint="/chat", status_code=200, output_tokens=9000),
            event(5, timestamp=at, endpoint="/search", status_code=502),
            event(6, timestamp=at, endpoint="/search", status_code=200, input_tokens=7000),
        ],
    )
    ingest_events(
        world.other_ingest.key, [event(9, timestamp=at, endpoint="/secret-route", status_code=500)]
    )
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _row(html: str, name: str) -> list[str]:
    """The cells of the table row whose first cell is `name`."""
    found = re.search(rf"<tr><td>{re.escape(name)}</td>(.*?)</tr>", html)
    assert found, f"no row {name!r}"
    return re.findall(r'<td class="num[^"]*">(?:<span[^>]*></span>)?([^<]*)</td>', found.group(1))


def _spend(world: World, **where: object) -> Decimal:
    rows = UsageEvent.objects.for_tenant(world.tenant).filter(**where)
    return rows.aggregate(c=Sum("cost_usd"))["c"]


@pytest.mark.parametrize("window", ["range=7d", "range=24h"])
@pytest.mark.parametrize("user", ["owner", "member"])
def test_it_shows_each_endpoints_spend_calls_and_outcome_shares(
    world: World, window: str, user: str
) -> None:
    _seed(world)
    html = login(user).get(f"/endpoints/?{window}").content.decode()
    chat = _row(html, "/chat")
    # spend, share, change, calls, tokens, errors, 429 share, 5xx share
    assert chat[0] == usd(_spend(world, endpoint="/chat"))
    assert chat[3] == "4"
    assert chat[5:] == ["50.0%", "50.0%", "0.0%"]
    search = _row(html, "/search")
    assert search[0] == usd(_spend(world, endpoint="/search"))
    assert search[3] == "2"
    assert search[5:] == ["50.0%", "0.0%", "50.0%"]
    assert "/secret-route" not in html


def test_it_narrows_the_endpoints_to_the_page_filters(world: World) -> None:
    _seed(world)
    html = login("member").get("/endpoints/?range=7d&status=429").content.decode()
    chat = _row(html, "/chat")
    assert chat[0] == usd(_spend(world, endpoint="/chat", status_code=429))
    assert chat[3] == "2" and chat[5:] == ["100.0%", "100.0%", "0.0%"]
    assert "<td>/search</td>" not in html


@pytest.mark.parametrize("window", ["range=7d", "range=24h"])
def test_it_shows_calls_and_spend_per_status_class(world: World, window: str) -> None:
    _seed(world)
    html = login("member").get(f"/statuses/?{window}").content.decode()
    limited = _row(html, "429 rate limited")
    assert limited[0] == usd(_spend(world, status_code=429)) and limited[3] == "2"
    assert _row(html, "2xx success")[3] == "3"
    assert _row(html, "5xx server error")[0] == usd(_spend(world, status_code=502))


def test_it_shows_an_outsider_only_their_own_endpoints(world: World) -> None:
    _seed(world)
    for path in ("/endpoints/?range=7d", "/statuses/?range=7d"):
        html = login("outsider").get(path).content.decode()
        assert "/chat" not in html and "/search" not in html
    assert "<td>/secret-route</td>" in login("outsider").get("/endpoints/").content.decode()
    assert "/secret-route" not in login("owner").get("/endpoints/").content.decode()


def test_it_stacks_the_overview_by_endpoint_and_status(world: World) -> None:
    _seed(world)
    for stack, expected in (("endpoint", {"/chat", "/search"}), ("status", _STATUS_SERIES)):
        html = login("member").get(f"/?range=7d&stack={stack}").content.decode()
        found = re.search(r'<script id="spend" type="application/json">(.*?)</script>', html)
        assert found
        figure = json.loads(found.group(1))
        assert {trace["name"] for trace in figure["data"]} == expected
        assert figure["layout"]["title"]["text"] == f"Spend by {stack}"


_STATUS_SERIES = {"2xx success", "429 rate limited", "5xx server error"}


@pytest.mark.parametrize("query", ["range=7d", "range=24h", "range=7d&endpoint=/chat"])
def test_it_lists_the_top_endpoints_and_status_classes_on_the_overview(
    world: World, query: str
) -> None:
    _seed(world)
    html = login("member").get(f"/?{query}").content.decode()
    endpoints = html[html.index("<caption>Top endpoints</caption>") :]
    assert _row(endpoints, "/chat")[0] == usd(_spend(world, endpoint="/chat"))
    statuses = html[html.index("<caption>Status classes</caption>") :]
    chat = {"endpoint": "/chat"} if "endpoint" in query else {}
    assert _row(statuses, "429 rate limited")[0] == usd(_spend(world, status_code=429, **chat))
    assert "/secret-route" not in html
