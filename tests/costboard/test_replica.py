"""The read replica against a real hot standby of the machine's PostgreSQL (tests/replica.py),
through the production server: figures read from it, writes to the primary, lag in /readyz
and /metrics, and the fall back to the primary when it lags too far or is down."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.db import connection

from rollups.services import roll_up_all_pending
from tests import replica, worker
from tests.conftest import PASSWORD, World, event, production_password
from tests.server import web_server

pytestmark = [
    pytest.mark.skipif(not replica.available(), reason="needs PostgreSQL 15's binaries and root"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]
METRICS_TOKEN = "replica-test-metrics-token"  # the operator's scrape, with every family


@pytest.fixture(scope="module")
def standby(django_db_setup: Any, django_db_blocker: Any) -> Iterator[replica.Standby]:
    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
    with replica.standby(name) as node:
        yield node


@pytest.fixture
def node(standby: replica.Standby) -> replica.Standby:
    standby.wait_ready()  # a test that stopped it started it again without waiting
    return standby


def _env(node: replica.Standby, max_lag: int) -> dict[str, str]:
    primary = worker.test_database_url()
    return {
        "DATABASE_URL": primary,
        "DATABASE_REPLICA_URL": re.sub(r":\d+/", f":{node.port}/", primary),
        "REPLICA_MAX_LAG_SECONDS": str(max_lag),
        "REPLICA_CHECK_SECONDS": "1",
        "METRICS_TOKEN": METRICS_TOKEN,
        "METRICS_CACHE_SECONDS": "0",
    }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ingest(base: str, world: World, prefix: str, count: int) -> None:
    body = {"events": [event(f"{prefix}-{i}") for i in range(count)]}
    response = httpx.post(f"{base}/api/v1/events", json=body, headers=_bearer(world.ingest.token))
    assert response.status_code in (200, 202), response.text
    roll_up_all_pending(world.tenant.pk)


def _api_requests(base: str, world: World, token: str | None = None) -> int:
    headers = _bearer(token or world.read.token)
    response = httpx.get(f"{base}/api/v1/usage", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return sum(row["requests"] for row in response.json()["rows"])


def _page_requests(browser: httpx.Client) -> int:
    page = browser.get("/")
    assert page.status_code == 200, page.text[:500]
    found = re.search(r'data-testid="requests">([^<]*)<', page.text)
    assert found, page.text[:500]
    return int(found.group(1))


def _prices_calls(browser: httpx.Client) -> int:
    page = browser.get("/prices/")
    assert page.status_code == 200, page.text[:500]
    return sum(int(n) for n in re.findall(r'data-testid="calls">([^<]*)<', page.text))


def _until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _sign_in(browser: httpx.Client) -> None:
    production_password("owner")
    browser.get("/accounts/login/")
    form = {"username": "owner", "password": PASSWORD}
    response = _post(browser, "/accounts/login/", form)
    assert response.status_code == 302, response.text[:500]
    # Signing in is a write: the browser reads the primary for a while, as after any post.
    assert "costboard-fresh" in browser.cookies
    browser.cookies.delete("costboard-fresh")


def _post(browser: httpx.Client, url: str, form: dict[str, str]) -> httpx.Response:
    token = browser.cookies["csrftoken"]
    return browser.post(url, data={**form, "csrfmiddlewaretoken": token})


def _lag_metric(base: str) -> float:
    text = httpx.get(f"{base}/metrics", headers=_bearer(METRICS_TOKEN), timeout=30).text
    found = re.search(r"^costboard_replica_lag_seconds (\S+)$", text, re.M)
    assert found, "no costboard_replica_lag_seconds"
    return float(found.group(1))


def test_it_reads_pages_and_the_usage_api_from_the_replica_and_writes_to_the_primary(
    world: World, node: replica.Standby
) -> None:
    with (
        web_server(_env(node, max_lag=30), workers=1) as base,
        httpx.Client(base_url=base, timeout=30) as browser,
    ):
        _sign_in(browser)
        _ingest(base, world, "a", 3)
        _until(lambda: _api_requests(base, world) == 3)
        node.sql("SELECT pg_wal_replay_pause()")
        try:
            _ingest(base, world, "b", 4)  # a write while the replica replays nothing: the primary's
            time.sleep(1.5)  # past REPLICA_CHECK_SECONDS and the replica's replay interval
            # The replica still has 3 calls: what the page and the API show comes from it.
            assert _api_requests(base, world) == 3
            assert _page_requests(browser) == 3
            assert _prices_calls(browser) == 3  # a page added after the replica reads it too
            assert _api_requests(base, world, world.other_read.token) == 0  # globex sees none
            ready = httpx.get(f"{base}/readyz").json()
            assert ready["status"] == "ok" and ready["replica_in_use"] is True
            assert 0 < ready["replica_lag_seconds"] < 30
            assert 0 < _lag_metric(base) < 30
            # A settings form saves on the primary; the browser that saved then reads the
            # primary (its pages show the 7 calls), other readers keep the replica's 3.
            browser.get("/settings/")
            saved = _post(browser, "/settings/", {"action": "create_key", "name": "replica-key",
                                                  "scope": "read"})  # fmt: skip
            assert saved.status_code in (200, 302), saved.text[:500]
            assert "replica-key" in browser.get("/settings/").text
            assert _page_requests(browser) == 7
            assert _prices_calls(browser) == 7
            assert _api_requests(base, world) == 3
        finally:
            node.sql("SELECT pg_wal_replay_resume()")
        _until(lambda: _api_requests(base, world) == 7)
        browser.cookies.delete("costboard-fresh")
        assert _page_requests(browser) == 7


def test_it_reads_the_primary_when_the_replica_lags_too_far_or_is_down(
    world: World, node: replica.Standby
) -> None:
    with web_server(_env(node, max_lag=1), workers=1) as base:
        _ingest(base, world, "a", 3)
        _until(lambda: _api_requests(base, world) == 3)
        node.sql("SELECT pg_wal_replay_pause()")
        try:
            _ingest(base, world, "b", 4)
            time.sleep(2.5)  # the replica's last replayed commit is now over 1 s old
            assert _api_requests(base, world) == 7  # from the primary
            ready = httpx.get(f"{base}/readyz").json()
            assert ready["status"] == "degraded" and ready["replica_in_use"] is False
            assert any("behind" in p for p in ready["problems"]), ready
            assert _lag_metric(base) > 1
        finally:
            node.sql("SELECT pg_wal_replay_resume()")
        # Caught up means replayed to the primary's WAL position, which other databases of
        # the cluster move too: under their load the replica needs longer to be used again.
        _until(
            lambda: (
                _api_requests(base, world) == 7
                and httpx.get(f"{base}/readyz").json()["replica_in_use"]
            ),
            timeout=120,
        )
        node.stop()
        try:
            # At once, although the last measurement (up to 1 s old) saw it up: no error.
            _ingest(base, world, "c", 2)
            assert _api_requests(base, world) == 9  # the replica is down: the primary answers
            ready = httpx.get(f"{base}/readyz").json()
            assert ready["status"] == "degraded" and ready["replica_lag_seconds"] is None
            assert "replica: unreachable; reading the primary" in ready["problems"]
            assert _lag_metric(base) == float("inf")
        finally:
            node.start(wait=False)
