"""A revoked key is refused by every web process within a second, Redis up or down.

Two production servers on the same database: keys are revoked on one (its settings page) or
from the command line, and the other, which had the key cached, must refuse it in < 1 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.utils import timezone

from tenants.models import ApiKey
from tests import worker
from tests.conftest import PASSWORD, KeyHolder, World, event, production_password
from tests.otlp.helpers import export_request, genai_attributes, span
from tests.server import ROOT, web_server
from tests.tcp_proxy import TcpProxy, tcp_proxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
DEADLINE = 1.0  # seconds from the revocation to every process refusing the key


def _env(**extra: str) -> dict[str, str]:
    return {"DATABASE_URL": worker.test_database_url(), "API_KEY_CACHE_SECONDS": "600", **extra}


def _post(base: str, holder: KeyHolder, n: int | str) -> int:
    response = httpx.post(
        f"{base}/api/v1/events",
        json=event(n),
        headers={"Authorization": f"Bearer {holder.token}"},
        timeout=30,
    )
    return response.status_code


def _refused_within(base: str, holder: KeyHolder, revoked_at: float) -> tuple[float, int]:
    """Post events until one is refused: (seconds since `revoked_at`, events accepted since)."""
    accepted = 0
    while (status := _post(base, holder, f"after-{accepted}")) == 202:
        accepted += 1
        assert time.monotonic() - revoked_at < 5, "the revoked key is still accepted after 5 s"
    assert status == 401
    return time.monotonic() - revoked_at, accepted


def _warm(base: str, holder: KeyHolder) -> None:
    # Several requests: the key is now in the server's per-process cache (600 s).
    assert [_post(base, holder, f"warm-{i}") for i in range(3)] == [202] * 3


def _revoke_on_settings_page(base: str, key: ApiKey) -> float:
    """Sign in as the owner on `base` and revoke `key` there; the moment the page answered."""
    with httpx.Client(base_url=base, timeout=30) as client:
        token = client.get("/accounts/login/").cookies["csrftoken"]
        login = {"username": "owner", "password": PASSWORD, "csrfmiddlewaretoken": token}
        assert client.post("/accounts/login/", data=login).status_code == 302
        form = {"action": "revoke_key", "id": str(key.pk)}
        csrf = client.cookies["csrftoken"]
        answer = client.post("/settings/", data={**form, "csrfmiddlewaretoken": csrf})
        assert answer.status_code in (200, 302), answer.text
        return time.monotonic()


def _otlp_status(base: str, holder: KeyHolder) -> int:
    body = export_request([span(genai_attributes())]).SerializeToString()
    headers = {"Authorization": f"Bearer {holder.token}", "Content-Type": "application/x-protobuf"}
    return httpx.post(f"{base}/v1/traces", content=body, headers=headers, timeout=30).status_code


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    """Our own TCP proxy in front of the shared Redis: cutting it is a Redis outage for the
    server behind it only."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis (REDIS_URL): the embedded broker has no port to cut")
    url = urlsplit(os.environ["REDIS_URL"])
    with tcp_proxy(url.hostname or "127.0.0.1", url.port or 6379) as proxy:
        yield proxy


def _through(proxy: TcpProxy) -> str:
    url = urlsplit(os.environ["REDIS_URL"])
    return url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


def test_it_refuses_a_key_revoked_on_the_settings_page_on_another_process_within_a_second(
    world: World,
) -> None:
    production_password("owner")
    with web_server(_env(), workers=1) as admin, web_server(_env(), workers=1) as other:
        _warm(other, world.ingest)
        assert _otlp_status(other, world.ingest) == 200
        revoked_at = _revoke_on_settings_page(admin, world.ingest.key)
        elapsed, accepted = _refused_within(other, world.ingest, revoked_at)
        # Every ingest path of that process shares the key cache.
        assert _otlp_status(other, world.ingest) == 401
        assert _post(other, world.other_ingest, "still-live") == 202
    print(f"refused by the other process {elapsed:.3f} s after revocation ({accepted} accepted)")
    assert elapsed < DEADLINE


def test_it_refuses_a_revoked_key_within_a_second_while_redis_is_unreachable(
    world: World, redis_proxy: TcpProxy
) -> None:
    env = _env(REDIS_URL=_through(redis_proxy))
    with web_server(env, workers=1) as base:
        _warm(base, world.ingest)
        redis_proxy.cut()
        # Keys are now read from the database: a live one still works, with Redis down.
        assert _post(base, world.other_ingest, "redis-down") == 202
        ApiKey.objects.for_tenant(world.tenant).filter(pk=world.ingest.key.pk).update(
            revoked_at=timezone.now()
        )  # as the command does while Redis is down: no announcement reaches this server
        revoked_at = time.monotonic()
        elapsed, accepted = _refused_within(base, world.ingest, revoked_at)
        assert _post(base, world.other_ingest, "still-live") == 202
    print(f"refused with Redis down {elapsed:.3f} s after revocation ({accepted} accepted)")
    assert elapsed < DEADLINE


def _command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "SECRET_KEY": "test-only-secret-key",
        "DATABASE_URL": worker.test_database_url(),
        **env,
    }
    cmd = [sys.executable, "manage.py", "revoke_api_key", *args]
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)


def test_it_revokes_from_the_command_line_for_every_process(world: World) -> None:
    with web_server(_env(), workers=2) as base:
        _warm(base, world.ingest)
        done = _command("acme", world.ingest.key.prefix)
        revoked_at = time.monotonic()
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"revoked ingest key {world.ingest.key.prefix} of acme"
        assert done.stderr == ""
        # Two workers: each answers some of these posts, each must refuse.
        elapsed, _ = _refused_within(base, world.ingest, revoked_at)
        assert [_post(base, world.ingest, f"late-{i}") for i in range(6)] == [401] * 6
    assert elapsed < DEADLINE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuch", "abc"), "tenant 'nosuch' does not exist"),
        (("acme", "0000000000"), "tenant 'acme' has no API key with prefix '0000000000'"),
    ],
)
def test_it_refuses_an_unknown_tenant_or_prefix(
    world: World, args: tuple[str, ...], message: str
) -> None:
    done = _command(*args)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_it_does_not_revoke_another_tenants_key_by_its_prefix(world: World) -> None:
    done = _command("acme", world.other_ingest.key.prefix)
    assert done.returncode != 0 and "has no API key with prefix" in done.stderr
    key = ApiKey.objects.for_tenant(world.other_tenant).get(pk=world.other_ingest.key.pk)
    assert key.revoked_at is None


def test_it_says_when_a_key_was_already_revoked(world: World) -> None:
    assert _command("acme", world.ingest.token).returncode == 0  # the whole key works too
    again = _command("acme", world.ingest.key.prefix)
    assert again.returncode != 0 and "was already revoked at" in again.stderr


def test_it_warns_when_redis_is_unreachable_but_still_revokes(
    world: World, redis_proxy: TcpProxy, settings: Any
) -> None:
    redis_proxy.cut()
    done = _command("acme", world.ingest.key.prefix, REDIS_URL=_through(redis_proxy))
    assert done.returncode == 0, done.stderr
    assert "shared cache (Redis) is unreachable" in done.stderr
    key = ApiKey.objects.for_tenant(world.tenant).get(pk=world.ingest.key.pk)
    assert key.revoked_at is not None
