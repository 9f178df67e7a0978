"""A chosen tag key's page: spend and calls per value as the raw events add up, "(none)"
for calls without the tag, the page filters applied; viewers see it, another tenant's key
is a 404 and its values never show."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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
    set_tag_dimensions(world.tenant, ["tier"])
    set_tag_dimensions(world.other_tenant, ["region"])
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=at, tags={"tier": "pro"}, endpoint="/chat"),
            event(2, timestamp=at, tags={"tier": "pro"}, status_code=429),
            event(3, timestamp=at, tags={"tier": "free"}, endpoint="/chat"),
            event(4, timestamp=at, status_code=503),
        ],
    )
    ingest_events(world.other_ingest.key, [event(9, timestamp=at, tags={"region": "secret-eu"})])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _spend(world: World, *ids: int) -> str:
    rows = UsageEvent.objects.for_tenant(world.tenant).filter(
        event_id__in=[f"evt-{n}" for n in ids]
    )
    return usd(rows.aggregate(c=Sum("cost_usd"))["c"])


def _rows(html: str) -> dict[str, list[str]]:
    rows = re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", html)
    cell = r'<td class="num[^"]*">(?:<span[^>]*></span>)?([^<]*)</td>'
    return {name: re.findall(cell, rest) for name, rest in rows}


@pytest.mark.parametrize("window", ["range=7d", "range=24h"])
@pytest.mark.parametrize("user", ["owner", "member"])
def test_it_shows_spend_and_calls_per_tag_value(world: World, window: str, user: str) -> None:
    _seed(world)
    page = login(user).get(f"/tags/tier/?{window}")
    assert page.status_code == 200
    html = page.content.decode()
    rows = _rows(html)
    assert set(rows) == {"pro", "free", "(none)"}
    # spend, share, change, calls, tokens, errors, 429 share, 5xx share
    assert rows["pro"][0] == _spend(world, 1, 2) and rows["pro"][3] == "2"
    assert rows["pro"][5:] == ["50.0%", "50.0%", "0.0%"]
    assert rows["(none)"][0] == _spend(world, 4) and rows["(none)"][7] == "100.0%"
    assert rows["free"][0] == _spend(world, 3)
    assert "(other)" in html and "History of this tag starts on" in html
    assert 'href="/tags/tier/"' in html  # in the navigation


def test_it_applies_the_page_filters_to_the_tag_values(world: World) -> None:
    _seed(world)
    rows = _rows(login("member").get("/tags/tier/?range=7d&endpoint=/chat").content.decode())
    assert set(rows) == {"pro", "free"}
    assert rows["pro"][0] == _spend(world, 1) and rows["pro"][3] == "1"


def test_it_hides_another_tenants_tag_keys(world: World) -> None:
    _seed(world)
    assert login("member").get("/tags/region/").status_code == 404
    assert login("outsider").get("/tags/tier/").status_code == 404
    html = login("outsider").get("/tags/region/?range=7d").content.decode()
    assert "<td>secret-eu</td>" in html and "/tags/tier/" not in html
    assert "secret-eu" not in login("owner").get("/?range=7d").content.decode()
    assert login("member").get("/tags/" + "x" * 300 + "/").status_code == 404
