"""Fixtures: one owner (admin), one member (viewer) and one outsider per fixture set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

import psycopg
import pytest
from django.conf import global_settings, settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpRequest
from django.test import Client, override_settings
from hypothesis import settings as hypothesis_settings
from hypothesis.database import DirectoryBasedExampleDatabase

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

from tenants.models import ApiKey, Role, Scope, Team, Tenant
from tenants.services import add_member, create_api_key, create_team, create_tenant
from tests.server import POOLER_HOST, POOLER_PORT

# Hypothesis keeps its examples under var/, not in a .hypothesis/ of the working directory.
hypothesis_settings.register_profile(
    "costboard", database=DirectoryBasedExampleDatabase(str(settings.VAR_DIR / "hypothesis"))
)
hypothesis_settings.load_profile("costboard")

PASSWORD = "correct-horse-battery"


class AuthHeader(TypedDict):
    """Client keyword arguments (WSGI environ) that send an API key."""

    HTTP_AUTHORIZATION: str


@dataclass
class KeyHolder:
    key: ApiKey
    token: str

    @property
    def auth(self) -> AuthHeader:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}


@dataclass
class World:
    tenant: Tenant
    team: Team
    other_tenant: Tenant
    other_team: Team
    ingest: KeyHolder
    read: KeyHolder
    other_ingest: KeyHolder
    other_read: KeyHolder


def _key(tenant: Tenant, team: Team | None, scope: Scope) -> KeyHolder:
    key, token = create_api_key(tenant, team=team, scope=scope)
    return KeyHolder(key, token)


@pytest.fixture
def world(db: Any) -> World:
    acme = create_tenant("acme", "Acme")
    other = create_tenant("globex", "Globex")
    search = create_team(acme, "search", "Search", "CC-1")
    other_team = create_team(other, "search", "Globex Search", "G-1")
    add_member(acme, "owner", Role.ADMIN, PASSWORD)
    add_member(acme, "finance", Role.FINANCE, PASSWORD)
    add_member(acme, "member", Role.VIEWER, PASSWORD)
    add_member(other, "outsider", Role.ADMIN, PASSWORD)
    return World(
        tenant=acme,
        team=search,
        other_tenant=other,
        other_team=other_team,
        ingest=_key(acme, search, Scope.INGEST),
        read=_key(acme, None, Scope.READ),
        other_ingest=_key(other, other_team, Scope.INGEST),
        other_read=_key(other, None, Scope.READ),
    )


def sign_in_request() -> HttpRequest:
    """What authenticate() gets from a login page: the lockout backend needs the request (its
    client address) and refuses to judge a sign-in without one."""
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    return request


def login(username: str, client: Client | None = None) -> Client:
    client = client or Client()
    assert client.login(request=sign_in_request(), username=username, password=PASSWORD)
    return client


def production_password(username: str) -> None:
    """Hash the user's password as a server subprocess checks it: tests hash with MD5 for
    speed, which the production settings do not know."""
    user = get_user_model().objects.get(username=username)
    with override_settings(PASSWORD_HASHERS=global_settings.PASSWORD_HASHERS):
        user.set_password(PASSWORD)
    user.save()


def post_json(client: Client, url: str, body: Any, holder: KeyHolder | None = None, **extra: Any):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    headers: dict[str, Any] = {**holder.auth} if holder else {}
    return client.post(url, data, content_type="application/json", **headers, **extra)


def event(n: int | str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"evt-{n}",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1000,
        "output_tokens": 500,
    }
    base.update(fields)
    return base


@pytest.fixture(scope="session", autouse=True)
def _plain_http() -> Iterator[None]:
    """The test client and live_server speak plain http: what COSTBOARD_PLAIN_HTTP=1 turns off,
    for the whole session (before live_server's SecurityMiddleware reads it). The HTTPS
    defaults are tested against a server started without the switch (tests/costboard)."""
    with override_settings(
        SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False
    ):
        yield


@pytest.fixture(scope="session", autouse=True)
def _pooler_lets_go_of_the_test_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """CI's pooled stage: PgBouncer keeps server connections to the test database after the
    servers and workers are gone, and PostgreSQL will not drop a database in use. Before the
    test database is dropped (this fixture is torn down first), close them: KILL, then RESUME
    so a later run's database of the same name is served again."""
    if not POOLER_PORT:
        yield
        return
    request.getfixturevalue("django_db_setup")
    yield
    name = connection.settings_dict["NAME"]
    admin = f"postgres://{connection.settings_dict['USER']}@{POOLER_HOST}:{POOLER_PORT}/pgbouncer"
    with psycopg.connect(admin, autocommit=True) as console:
        console.execute(f"KILL {name}")
        console.execute(f"RESUME {name}")


@pytest.fixture
def long_retention(settings: Any) -> None:
    """Raw events kept 10 years, for tests that send events of fixed dates (catalog price
    periods of 2025): ingest refuses timestamps older than the retention window."""
    settings.RAW_EVENT_RETENTION_DAYS = 3650


@pytest.fixture(autouse=True)
def _fast_passwords_and_clean_cache(settings: Any) -> Any:
    # Real hashing costs ~0.3 s a user; tests are about access, not hash strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.core.cache import cache

    cache.clear()
    from tenants import keycache

    keycache.clear()
    yield


@pytest.fixture
def loopback_receivers(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alert receivers on 127.0.0.1 (tests/httpcapture.py) let through the egress policy, as an
    operator lets an on-premises receiver through: here and in a worker the test starts."""
    settings.ALERT_EGRESS_ALLOW = ["127.0.0.1"]
    monkeypatch.setenv("ALERT_EGRESS_ALLOW", "127.0.0.1")
