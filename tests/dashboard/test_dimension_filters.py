"""The overview under the endpoint, status and model family filters: the numbers change as
the events say, for a day range (daily rollups) and the last 24 hours (hourly)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.http import QueryDict
from django.test import Client

from dashboard.filters import parse_filters
from dashboard.rows import slices_for
from ingest.services import ingest_events
from pricing.services import set_family_rule
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
            event(3, timestamp=at, endpoint="/chat", status_code=429, model="gpt-4o-2024-08-06"),
            event(4, timestamp=at, endpoint="/search", status_code=502, model="gpt-4o-mini"),
            event(
                5,
                timestamp=at,
                endpoint="/search",
                provider="anthropic",
                model="claude-3-5-sonnet-20241022",
            ),
        ],
    )
    ingest_events(
        world.other_ingest.key, [event(9, timestamp=at, endpoint="/chat", status_code=429)]
    )
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _requests(client: Client, query: str) -> int:
    page = client.get(f"/?{query}")
    assert page.status_code == 200
    found = re.search(r'data-testid="requests">([\d,]+)<', page.content.decode())
    return int(found.group(1).replace(",", "")) if found else 0


@pytest.mark.parametrize("window", ["range=7d", "range=24h"])
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 5),
        ("endpoint=/chat", 3),
        ("endpoint=/search", 2),
        ("endpoint=/none", 0),
        ("status=429", 2),
        ("status=5xx", 1),
        ("status=2xx", 2),
        ("status=429&endpoint=/search", 0),
        ("model_family=GPT-4o", 3),  # gpt-4o and gpt-4o-2024-08-06
        ("model_family=GPT-4o+mini", 1),
        ("model_family=Claude+3.5", 1),
        ("model_family=Claude+3.5&endpoint=/search", 1),
        ("model_family=GPT-4o&status=429", 2),
        ("model_family=Gemini+2.0", 0),
    ],
)
def test_it_narrows_the_overview_to_the_filtered_calls(
    world: World, window: str, query: str, expected: int
) -> None:
    _seed(world)
    assert _requests(login("member"), f"{window}&{query}") == expected


def test_it_follows_the_tenants_own_family_rules(world: World) -> None:
    _seed(world)
    set_family_rule(world.tenant, "gpt-4o", "All 4o")
    set_family_rule(world.other_tenant, "claude", "All 4o")  # not ours
    client = login("member")
    assert _requests(client, "range=7d&model_family=All+4o") == 4
    assert _requests(client, "range=7d&model_family=GPT-4o") == 0
    assert _requests(login("outsider"), "range=7d&model_family=All+4o") == 0


def test_it_keeps_the_new_filters_in_its_links_and_ignores_a_bad_status(world: World) -> None:
    _seed(world)
    params = {"endpoint": "/chat", "status": "429", "model_family": "GPT-4o", "range": "7d"}
    query = parse_filters(_query_dict(params)).query()
    for value in ("endpoint=%2Fchat", "status=429", "model_family=GPT-4o"):
        assert value in query
    assert parse_filters(_query_dict({"status": "teapot"})).status == ""
    page = login("member").get("/?range=7d&status=teapot")
    assert page.status_code == 200 and b"No status class" in page.content
    assert _requests(login("member"), "range=7d&status=teapot") == 5


def test_it_reads_one_slice_for_one_filter_and_the_full_rollups_for_two(world: World) -> None:
    one = parse_filters(_query_dict({"endpoint": "/chat"}))
    assert slices_for(one, "all") == ["endpoint"]
    assert slices_for(parse_filters(_query_dict({"model_family": "GPT-4o"})), "all") == ["model"]
    two = parse_filters(_query_dict({"endpoint": "/chat", "status": "429"}))
    assert slices_for(two, "all") is None
    assert slices_for(one, "team") is None


def _query_dict(params: dict[str, str]) -> QueryDict:
    q = QueryDict(mutable=True)
    q.update(params)
    return q
