"""HTTPS defaults of a production-configured server (DEBUG off, no plain-http switch): secure
cookies, HSTS, plain http redirected but the probes, a trusted proxy header, the policy; the
switch for plain-http runs; and `check --deploy` clean with the README's production settings."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSWORD, World, production_password
from tests.server import ROOT, web_server
from tests.worker import test_database_url as database_url

PROXY = {"X-Forwarded-Proto": "https"}


@pytest.fixture
def production() -> Iterator[str]:
    env = {
        "DATABASE_URL": database_url(),
        "COSTBOARD_PLAIN_HTTP": "0",
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https",
    }
    with web_server(env, workers=1) as base:
        yield base


def directives(policy: str) -> dict[str, list[str]]:
    parts = [directive.split() for directive in policy.split(";") if directive.strip()]
    return {name: values for name, *values in parts}


def _sign_in(base: str, username: str) -> httpx.Response:
    """Sign in through a TLS proxy's headers; the cookies go by hand, since a cookie jar keeps
    Secure cookies for https URLs and the test talks plain http to the server behind it."""
    page = httpx.get(f"{base}/accounts/login/", headers=PROXY)
    token = page.cookies["csrftoken"]
    return httpx.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={
            **PROXY,
            "Cookie": f"csrftoken={token}",
            "Referer": f"https://{base.removeprefix('http://')}/accounts/login/",
        },
    )


@pytest.mark.django_db(transaction=True)
def test_it_redirects_plain_http_but_answers_the_probes(world: World, production: str) -> None:
    page = httpx.get(f"{production}/accounts/login/?next=/teams/")
    assert page.status_code == 301
    assert page.headers["Location"] == f"https://{production[7:]}/accounts/login/?next=/teams/"
    # compose's health check and Prometheus call web:8000 over plain http.
    assert httpx.get(f"{production}/healthz").status_code == 200
    assert httpx.get(f"{production}/readyz").status_code in (200, 503)
    assert httpx.get(f"{production}/metrics").status_code != 301


@pytest.mark.django_db(transaction=True)
def test_it_sends_secure_cookies_hsts_and_the_policy_over_https(
    world: World, production: str
) -> None:
    login_page = httpx.get(f"{production}/accounts/login/", headers=PROXY)
    assert login_page.status_code == 200
    assert login_page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    policy = directives(login_page.headers["Content-Security-Policy"])
    assert policy["default-src"] == policy["script-src"] == ["'self'"]
    assert policy["object-src"] == policy["frame-ancestors"] == ["'none'"]
    assert not [v for values in policy.values() for v in values if "unsafe" in v or ":/" in v]
    assert re.search(r"csrftoken=.*; Secure", login_page.headers["Set-Cookie"])
    production_password("member")
    signed_in = _sign_in(production, "member")
    assert signed_in.status_code == 302
    session = signed_in.headers["Set-Cookie"]
    assert "sessionid=" in session and "; Secure" in session and "HttpOnly" in session


@pytest.mark.django_db(transaction=True)
def test_it_trusts_the_proxy_header_only_when_configured(world: World) -> None:
    env = {"DATABASE_URL": database_url(), "COSTBOARD_PLAIN_HTTP": "0"}
    with web_server(env, workers=1) as base:
        # Without SECURE_PROXY_SSL_HEADER a client cannot claim https by itself.
        assert httpx.get(f"{base}/accounts/login/", headers=PROXY).status_code == 301


@pytest.mark.django_db(transaction=True)
def test_it_serves_plain_http_with_the_switch(world: World) -> None:
    with web_server({"DATABASE_URL": database_url()}, workers=1) as base:  # switch on
        page = httpx.get(f"{base}/accounts/login/")
        assert page.status_code == 200
        assert "Strict-Transport-Security" not in page.headers
        assert "Secure" not in page.headers["Set-Cookie"]
        assert "Content-Security-Policy" in page.headers


def test_it_passes_check_deploy_with_the_production_settings() -> None:
    # The README's production environment (Docker Compose's .env), nothing else.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "COSTBOARD_", "SECURE_", "DEBUG"))
    }
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_hex(32),  # what `openssl rand -hex 32` gives
        ALLOWED_HOSTS="web,localhost,127.0.0.1,costboard.example.com",
        DATABASE_URL="postgres://costboard:pw@127.0.0.1:5432/costboard",
        REDIS_URL="redis://127.0.0.1:6379/0",
        METRICS_TOKEN=secrets.token_hex(32),
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    issues = set(re.findall(r"^\S*: \((\S+)\)", proc.stdout + proc.stderr, re.MULTILINE))
    assert issues == set(), proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
