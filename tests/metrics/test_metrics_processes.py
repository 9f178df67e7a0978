"""The real server: several web workers and a restart must report the same totals."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests import worker
from tests.conftest import World
from tests.metrics.helpers import costboard_lines, parse, pick, seed
from tests.server import web_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
REQUESTS = 40


def _server_env() -> dict[str, str]:
    # Every scrape reads the database (no cache), on the test database, open (no token).
    return {
        "DATABASE_URL": worker.test_database_url(),
        "METRICS_CACHE_SECONDS": "0",
        "METRICS_TOKEN": "",
        "METRICS_PUBLIC": "1",
        "METRICS_LABELS": "tenant,team,provider,model",
    }


def _scrape(base: str) -> str:
    response = httpx.get(f"{base}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def _served_by(body: str) -> float:
    # django-prometheus counts per process: how many /metrics requests *this* worker has seen.
    counts = pick(parse(body), "django_http_requests_total_by_view_transport_method_total")
    return next(v for labels, v in counts.items() if dict(labels)["view"] == "metrics")


def test_it_reports_identical_totals_from_every_worker(world: World) -> None:
    seed(world)
    with web_server(_server_env(), workers=2) as base, ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(pool.map(lambda _: _scrape(base), range(REQUESTS)))
    totals = {tuple(costboard_lines(body)) for body in bodies}
    assert len(totals) == 1, "workers disagree on costboard_* totals"
    assert any("costboard_cost_usd_total{" in line for line in totals.pop())
    # The same per-process count seen twice means two processes answered.
    assert Counter(_served_by(body) for body in bodies).most_common(1)[0][1] >= 2


def test_it_keeps_its_totals_across_a_restart(world: World) -> None:
    seed(world)
    with web_server(_server_env(), workers=1) as base:
        before = costboard_lines(_scrape(base))
    with web_server(_server_env(), workers=1) as base:
        after = costboard_lines(_scrape(base))
    assert after == before
    assert any(line.startswith("costboard_ingest_events_total{") for line in after)
