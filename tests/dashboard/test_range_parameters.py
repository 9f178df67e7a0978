"""Date-range parameters of every dashboard page: bounded, capped, never a 500."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.http import QueryDict

from dashboard.filters import parse_filters
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from tests.conftest import World, event, login

PAGES = ["/", "/teams/", "/teams/search/", "/features/", "/models/", "/consumers/"]
TODAY = datetime.now(UTC).date()


def _seed(world: World) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    ingest_events(world.ingest.key, [event(1, timestamp=yesterday.isoformat(), user_id="ann")])
    roll_up_all_pending(world.tenant.pk)


def _spend_days(page: str) -> list[str]:
    script = re.search(r'<script id="spend" type="application/json">(.*?)</script>', page, re.S)
    assert script
    return json.loads(script.group(1))["data"][0]["x"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-11-01&to=9999-12-31", "'to' must be a date between 1970-01-01 and 9998-12-31"),
        ("from=0001-01-01&to=0001-01-01", "'from' must be a date between 1970-01-01"),
        ("from=9998-12-31&to=9998-12-31", ""),  # the last day there is: a page, not a 500
        ("from=1970-01-01&to=1970-01-01", ""),  # and the first
        ("from=1969-12-31&to=2026-01-01", "'from' must be a date between 1970-01-01"),
        ("from=2026-02-30&to=2026-03-01", "'from' must be a date as YYYY-MM-DD"),
        ("from=%00&to=2026-03-01", "'from' must be a date as YYYY-MM-DD"),
        ("to=2026-03-01", "'from' must be a date as YYYY-MM-DD"),
    ],
)
def test_it_shows_the_page_with_a_message_for_a_date_out_of_bounds(
    world: World, path: str, query: str, message: str
) -> None:
    _seed(world)
    response = login("member").get(f"{path}?range=custom&{query}")
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")


def test_it_caps_a_custom_range_at_400_days_up_to_today(world: World) -> None:
    # A range of 57 years took 14.5 s and 59 MB: now the page shows the last 400 days.
    _seed(world)
    page = login("member").get(f"/?range=custom&from=1970-01-01&to={TODAY}").content.decode()
    first = TODAY - timedelta(days=399)
    assert f"A range spans at most 400 days; showing {first} to {TODAY}." in page
    days = _spend_days(page)
    assert len(days) == 400 and days[0] == first.isoformat() and days[-1] == TODAY.isoformat()
    assert len(page) < 500_000


def test_it_keeps_the_start_of_a_capped_range_that_begins_after_today() -> None:
    start = TODAY + timedelta(days=30)
    params = {"range": "custom", "from": start.isoformat(), "to": "9998-12-31"}
    f = parse_filters(_query(params))
    assert f.first_day == start and f.last_day == start + timedelta(days=399)
    assert f.errors and "at most 400 days" in f.errors[0]


def test_it_keeps_a_range_of_400_days_whole() -> None:
    params = {"range": "custom", "from": "2025-01-01", "to": "2026-02-04"}
    f = parse_filters(_query(params))
    assert (f.first_day.isoformat(), f.last_day.isoformat(), f.errors) == (
        "2025-01-01",
        "2026-02-04",
        (),
    )


def _query(params: dict[str, str]) -> QueryDict:
    return QueryDict(urlencode(params))


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("name", ["environment", "team", "feature", "model"])
def test_it_ignores_nul_characters_in_a_filter(world: World, path: str, name: str) -> None:
    # PostgreSQL refuses NUL in a query: a filter with one was a 500.
    _seed(world)
    assert login("member").get(f"{path}?{name}=a%00b").status_code == 200
