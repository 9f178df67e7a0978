"""Who may scrape /metrics, through the real server: closed to anonymous scrapes unless the
operator opens it, every tenant for the METRICS_TOKEN, one tenant for that tenant's read key."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import Client

from tenants.services import revoke_api_key
from tests import worker
from tests.conftest import World, login
from tests.metrics.helpers import costboard_lines, parse, pick, seed
from tests.server import web_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TOKEN = "operator-metrics-token"
USAGE_FAMILIES = (
    "costboard_cost_usd_total",
    "costboard_tokens_total",
    "costboard_requests_total",
    "costboard_request_latency_seconds_bucket",
    "costboard_tokens_per_request_bucket",
    "costboard_ingest_events_total",
)


def _env(**extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": worker.test_database_url(),
        "METRICS_CACHE_SECONDS": "0",
        "METRICS_LABELS": "tenant,team,provider,model",
        "METRICS_PUBLIC": "",
        "METRICS_TOKEN": "",
        **extra,
    }


@pytest.fixture(scope="module")
def closed(django_db_setup: Any) -> Iterator[str]:
    """The production default: METRICS_TOKEN set, METRICS_PUBLIC not."""
    with web_server(_env(METRICS_TOKEN=TOKEN), workers=1) as base:
        yield base


def _get(base: str, token: str | None = None, scheme: str = "Bearer") -> httpx.Response:
    # An empty token sends the bare scheme (httpx refuses a header ending in a space).
    headers = {"Authorization": f"{scheme} {token}".strip()} if token is not None else {}
    return httpx.get(f"{base}/metrics", headers=headers, timeout=30)


def _ok(base: str, token: str | None = None) -> str:
    response = _get(base, token)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.text


def _assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert "costboard_" not in response.text and "django_" not in response.text
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'


def _tenants_in(body: str) -> set[str]:
    return {dict(labels)["tenant"] for (_, labels) in parse(body) if "tenant" in dict(labels)}


def test_it_refuses_anonymous_scrapes_by_default(world: World, closed: str) -> None:
    seed(world)
    response = _get(closed)
    _assert_refused(response, 401)
    assert "METRICS_TOKEN" in response.text and "read API key" in response.text


def test_it_refuses_a_wrong_token_or_another_scheme(world: World, closed: str) -> None:
    seed(world)
    for token, scheme in (("wrong", "Bearer"), (TOKEN, "Basic"), ("", "Bearer")):
        _assert_refused(_get(closed, token, scheme), 401)
    # A well-formed key that does not exist, and a real key's prefix with a wrong secret.
    _assert_refused(_get(closed, "cb_0000000000_guess"), 401)
    _assert_refused(_get(closed, world.read.token[:-4] + "AAAA"), 401)


def test_it_gives_the_metrics_token_every_tenant(world: World, closed: str) -> None:
    seed(world)
    body = _ok(closed, TOKEN)
    assert _tenants_in(body) == {"acme", "globex"}
    assert "django_http_requests_total_by_method_total" in body  # the operator's own metrics


def test_it_gives_an_owner_read_key_only_its_own_tenant(world: World, closed: str) -> None:
    seed(world)
    mine = _ok(closed, world.read.token)
    assert _tenants_in(mine) == {"acme"}
    assert "globex" not in mine.lower()  # neither the other tenant's label nor its slug
    assert not [line for line in mine.splitlines() if line.startswith(("django_", "python_"))]
    for family in USAGE_FAMILIES:
        assert f"{family}{{" in mine, family
    # The same series, to the sample, as the operator's scrape shows for acme.
    operator = parse(_ok(closed, TOKEN))
    for name in ("costboard_cost_usd_total", "costboard_tokens_total"):
        assert pick(parse(mine), name) == pick(operator, name, tenant="acme")


def test_it_gives_an_outsider_read_key_only_the_outsiders_tenant(world: World, closed: str) -> None:
    seed(world)
    theirs = _ok(closed, world.other_read.token)
    assert _tenants_in(theirs) == {"globex"}
    assert "acme" not in theirs.lower()


def test_it_refuses_an_ingest_key(world: World, closed: str) -> None:
    seed(world)
    response = _get(closed, world.ingest.token)
    _assert_refused(response, 403)
    assert "read key" in response.text


def test_it_refuses_a_read_key_once_revoked(world: World, closed: str) -> None:
    seed(world)
    _ok(closed, world.read.token)  # now cached by the server's process
    revoke_api_key(world.read.key)
    started = time.monotonic()
    while _get(closed, world.read.token).status_code == 200:
        assert time.monotonic() - started < 1.0, "revoked read key still scraped after 1 s"
        time.sleep(0.05)
    _assert_refused(_get(closed, world.read.token), 401)


def test_it_does_not_open_to_a_signed_in_admin_or_member(world: World, settings: Any) -> None:
    # A browser session is no scrape credential: /metrics is for Prometheus, with a token.
    settings.METRICS_PUBLIC = False
    for username in ("owner", "member"):
        response = login(username).get("/metrics")
        assert response.status_code == 401
        assert b"costboard_" not in response.content


def test_it_opens_anonymous_scrapes_only_with_metrics_public(world: World) -> None:
    seed(world)
    with web_server(_env(METRICS_PUBLIC="1"), workers=1) as base:
        assert _tenants_in(_ok(base)) == {"acme", "globex"}
        # Credentials, when sent, are still checked: a wrong one is not ignored.
        _assert_refused(_get(base, "wrong"), 401)
        # The shipped empty deploy/metrics_token sends an empty bearer: refused, as the README says.
        _assert_refused(_get(base, ""), 401)


def test_it_serves_read_keys_with_no_metrics_token_set(world: World) -> None:
    seed(world)
    with web_server(_env(), workers=1) as base:
        _assert_refused(_get(base), 401)
        _assert_refused(_get(base, ""), 401)  # an empty METRICS_TOKEN is no token
        assert _tenants_in(_ok(base, world.read.token)) == {"acme"}


def test_it_labels_a_tenant_scrape_by_tenant_even_when_the_operator_does_not(
    world: World, settings: Any
) -> None:
    seed(world)
    settings.METRICS_PUBLIC = False
    settings.METRICS_LABELS = ["team", "model"]
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {world.read.token}"})
    assert response.status_code == 200
    costs = pick(parse(response.content.decode()), "costboard_cost_usd_total")
    assert costs and all(dict(labels)["tenant"] == "acme" for labels in costs)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_it_passes_promtool_check_metrics_for_a_tenant(world: World, closed: str) -> None:
    seed(world)
    body = _ok(closed, world.read.token)
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""
    assert costboard_lines(body)
