"""The ingest URLs as production serves them: granian (`costboard.serve`), the WSGI fast path.

Every status code a client can get from `POST /api/v1/events` and the compatibility endpoint,
through a real server, and the same answers as Django's own views give.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import Client

from ingest.models import UsageEvent
from tenants.models import ApiKey
from tenants.services import create_api_key, revoke_api_key
from tests import worker
from tests.conftest import KeyHolder, World, event, post_json
from tests.ingest.test_llm_costs_compat import tracker_payload
from tests.server import web_server

pytestmark = [pytest.mark.django_db(transaction=True)]
EVENTS = "/api/v1/events"
LLM_COSTS = "/api/v1/metrics/llm-costs"


@pytest.fixture
def server(world: World) -> Iterator[httpx.Client]:
    """One client (one kept-alive connection) to the production server on the test database."""
    with (
        web_server({"DATABASE_URL": worker.test_database_url()}, workers=1) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        yield client


def _post(client: httpx.Client, url: str, body: Any, holder: KeyHolder | None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if holder is not None:
        headers["Authorization"] = f"Bearer {holder.token}"
    return client.post(url, content=content, headers=headers)


def _stored(world: World) -> list[str]:
    return sorted(UsageEvent.objects.for_tenant(world.tenant).values_list("event_id", flat=True))


def test_it_accepts_a_batch_through_the_server_and_stores_it_exactly_once(
    world: World, server: httpx.Client
) -> None:
    batch = {"events": [event(i) for i in range(100)]}
    first = _post(server, EVENTS, batch, world.ingest)
    resent = _post(server, EVENTS, batch, world.ingest)  # a client retrying a lost answer
    assert (first.status_code, first.json()) == (202, {"accepted": 100, "duplicates": 0, "rejected": []})  # fmt: skip
    assert resent.json() == {"accepted": 0, "duplicates": 100, "rejected": []}
    assert _stored(world) == sorted(f"evt-{i}" for i in range(100))
    # Both answers came over one connection: the production config keeps connections alive.
    assert first.headers.get("Connection", "").lower() != "close"


def test_it_answers_401_with_www_authenticate_through_the_server(
    world: World, server: httpx.Client
) -> None:
    revoked = KeyHolder(*create_api_key(world.tenant, team=world.team))
    revoke_api_key(revoked.key)
    unknown = KeyHolder(world.ingest.key, "cb_nope_nope")
    answers = [_post(server, EVENTS, event(1), h) for h in (None, unknown, revoked)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all(a.headers["WWW-Authenticate"] == 'Bearer realm="costboard"' for a in answers)
    assert "credentials" in answers[0].json()["detail"]
    assert answers[1].json() == answers[2].json() == {"detail": "unknown or revoked API key"}
    assert _stored(world) == []


def test_it_answers_403_for_a_read_key_through_the_server(
    world: World, server: httpx.Client
) -> None:
    for url in (EVENTS, LLM_COSTS):
        response = _post(server, url, event(1), world.read)
        assert response.status_code == 403
        assert "ingest" in response.json()["detail"]


def test_it_answers_429_with_retry_after_through_the_server(
    world: World, server: httpx.Client
) -> None:
    ApiKey.objects.for_tenant(world.tenant).filter(pk=world.ingest.key.pk).update(
        rate_limit_per_minute=2
    )
    codes = [_post(server, EVENTS, event(i), world.ingest).status_code for i in range(3)]
    limited = _post(server, LLM_COSTS, tracker_payload(), world.ingest)
    assert codes == [202, 202, 429]
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "throttled" in limited.json()["detail"]
    assert _stored(world) == ["evt-0", "evt-1"]


def test_it_answers_413_through_the_server(world: World, server: httpx.Client) -> None:
    too_many = _post(server, EVENTS, {"events": [event(i) for i in range(1001)]}, world.ingest)
    too_big = _post(server, EVENTS, event(1, feature="x" * (5 * 1024 * 1024)), world.ingest)
    assert (too_many.status_code, too_big.status_code) == (413, 413)
    assert "1000 events" in too_many.json()["detail"]
    assert _stored(world) == []


def test_it_answers_400_naming_the_bad_field_through_the_server(
    world: World, server: httpx.Client
) -> None:
    not_json = _post(server, EVENTS, b"{not json", world.ingest)
    mixed = _post(server, EVENTS, {"events": [event(1), event(2, model="")]}, world.ingest)
    incomplete = _post(server, LLM_COSTS, {"trace_id": "t-1"}, world.ingest)
    assert not_json.status_code == 400 and "JSON" in not_json.json()["detail"]
    assert mixed.status_code == 202
    assert mixed.json()["rejected"] == [{"index": 1, "errors": {"model": ["is required"]}}]
    assert incomplete.status_code == 400
    assert "input_tokens" in incomplete.json()["rejected"][0]["errors"]
    assert _stored(world) == ["evt-1"]


def test_it_answers_200_for_the_tracker_payload_through_the_server(
    world: World, server: httpx.Client
) -> None:
    response = _post(server, LLM_COSTS, tracker_payload(), world.ingest)
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert len(_stored(world)) == 1


def test_it_answers_like_the_django_views(world: World, server: httpx.Client) -> None:
    # The fast path and the Django views share one endpoint function: same status, same body.
    requests: list[tuple[str, Any, KeyHolder | None]] = [
        (EVENTS, {"events": [event("same-1"), event(2, input_tokens=-1), "x"]}, world.ingest),
        (EVENTS, {"events": []}, world.ingest),
        (EVENTS, {"events": {"a": 1}}, world.ingest),
        (EVENTS, b"[1, 2]", world.ingest),
        (EVENTS, event(3), world.read),
        (EVENTS, event(3), None),
        (LLM_COSTS, tracker_payload(), world.ingest),
    ]
    for url, body, holder in requests:
        served = _post(server, url, body, holder)
        UsageEvent.objects.for_tenant(world.tenant).delete()  # so both store, not deduplicate
        viewed = post_json(Client(), url, body, holder)
        assert (served.status_code, served.content) == (viewed.status_code, viewed.content), url
        for header in ("WWW-Authenticate", "Retry-After", "Content-Type"):
            assert served.headers.get(header) == viewed.get(header), header


def test_it_leaves_a_request_for_an_unknown_host_to_django(
    world: World, server: httpx.Client
) -> None:
    content = json.dumps(event(1)).encode()
    headers = {"Host": "evil.example", "Authorization": f"Bearer {world.ingest.token}"}
    response = server.post(EVENTS, content=content, headers=headers)
    assert response.status_code == 400  # Django's ALLOWED_HOSTS check
    assert _stored(world) == []


def test_it_answers_503_with_retry_after_on_both_urls_when_the_database_is_unreachable() -> None:
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/costboard"}
    headers = {"Authorization": "Bearer cb_abc_def"}
    with web_server(env, workers=1) as base, httpx.Client(base_url=base, timeout=30) as client:
        answers = [
            client.post(EVENTS, json=event(1), headers=headers),
            client.post(LLM_COSTS, json=tracker_payload(), headers=headers),
            client.post(EVENTS, json=event(2), headers=headers),  # and again: never a 500
        ]
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert all(int(a.headers["Retry-After"]) > 0 for a in answers)
    assert answers[0].json() == {"detail": "storage is unavailable, retry later"}


def test_it_redirects_plain_http_and_sends_hsts_over_https_as_django_does(world: World) -> None:
    # An HTTPS-only deployment behind a TLS-terminating proxy: a client that posts over plain
    # http is redirected as by Django's own middleware, and HTTPS answers carry HSTS.
    env = {
        "DATABASE_URL": worker.test_database_url(),
        "COSTBOARD_PLAIN_HTTP": "0",
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https",
    }
    auth = {"Authorization": f"Bearer {world.ingest.token}", "Content-Type": "application/json"}
    with web_server(env, workers=1) as base, httpx.Client(base_url=base, timeout=30) as client:
        plain = client.post(EVENTS, content=json.dumps(event(1)).encode(), headers=auth)
        https = {**auth, "X-Forwarded-Proto": "https"}
        secure = client.post(EVENTS, content=json.dumps(event(2)).encode(), headers=https)
        page = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{httpx.URL(base).netloc.decode()}{EVENTS}"
    assert secure.status_code == 202
    hsts = "max-age=31536000; includeSubDomains"
    assert secure.headers["Strict-Transport-Security"] == hsts
    assert page.headers["Strict-Transport-Security"] == hsts  # Django's own, for comparison
    assert _stored(world) == ["evt-2"]
