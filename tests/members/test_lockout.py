"""Login lockout: 5 failures in a row for a username, or too many from one address, refuse
every sign-in (the right password too) until the lockout ends or someone unlocks it."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.test import Client

from tests.conftest import PASSWORD, World, production_password
from tests.server import web_server
from tests.worker import test_database_url as database_url

WRONG = "not-the-password"


def _try(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def _fail(client: Client, username: str, times: int, address: str = "10.0.0.1") -> Any:
    answers = [_try(client, username, WRONG, address) for _ in range(times)]
    return answers[-1]


def test_it_locks_a_username_after_five_failures_even_for_the_right_password(
    world: World,
) -> None:
    client = Client()
    assert _fail(client, "member", 4).status_code == 200  # "did not match", not locked yet
    locked = _fail(client, "member", 1)
    assert locked.status_code == 429
    assert "blocked for 15 minutes" in locked.content.decode()
    right = _try(client, "member", PASSWORD)
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    # From another address too: the count is the username's.
    assert _try(Client(), "member", PASSWORD, address="10.0.0.2").status_code == 429
    # Another username is not affected.
    assert _try(Client(), "owner", PASSWORD).status_code == 302


def test_it_resets_the_count_on_success(world: World) -> None:
    client = Client()
    _fail(client, "member", 4)
    assert _try(client, "member", PASSWORD).status_code == 302
    assert _fail(Client(), "member", 4).status_code == 200
    assert _try(Client(), "member", PASSWORD).status_code == 302


def test_it_limits_failures_per_address(world: World, settings: Any) -> None:
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6
    for n in range(5):
        assert _fail(Client(), f"nobody-{n}", 1).status_code == 200
    assert _fail(Client(), "nobody-5", 1).status_code == 429
    # Every username from that address is refused now; other addresses are not.
    assert _try(Client(), "owner", PASSWORD).status_code == 429
    assert _try(Client(), "owner", PASSWORD, address="10.0.0.2").status_code == 302


def test_it_ends_the_lockout_after_the_configured_time(world: World, settings: Any) -> None:
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    _fail(Client(), "member", 5)
    assert _try(Client(), "member", PASSWORD).status_code == 429
    time.sleep(1.5)
    assert _try(Client(), "member", PASSWORD).status_code == 302


def test_it_unlocks_with_manage_py(world: World, capsys: Any) -> None:
    _fail(Client(), "member", 5)
    call_command("unlock", "member")
    assert "member: unlocked" in capsys.readouterr().out
    assert _try(Client(), "member", PASSWORD).status_code == 302
    call_command("unlock", "member")
    assert "no failed sign-ins" in capsys.readouterr().out


def test_it_unlocks_with_axes_own_command(world: World) -> None:
    _fail(Client(), "member", 5)
    call_command("axes_reset_username", "member")
    assert _try(Client(), "member", PASSWORD).status_code == 302


def _login(base: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base) as client:
        token = client.get("/accounts/login/").cookies["csrftoken"]
        return client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        )


@pytest.mark.django_db(transaction=True)
def test_it_locks_out_and_unlocks_on_the_production_server(world: World) -> None:
    production_password("member")
    with web_server({"DATABASE_URL": database_url()}, workers=2) as base:
        for _ in range(4):
            assert _login(base, "member", WRONG).status_code == 200
        locked = _login(base, "member", WRONG)
        assert locked.status_code == 429 and "blocked for 15 minutes" in locked.text
        right = _login(base, "member", PASSWORD)
        assert right.status_code == 429 and "sessionid" not in right.cookies
        # Keys are not sign-ins: the API answers as before.
        bearer = {"Authorization": f"Bearer {world.read.token}"}
        usage = httpx.get(f"{base}/api/v1/usage", headers=bearer)
        assert usage.status_code == 200
        call_command("unlock", "member")  # the same Redis as the server's workers
        assert _login(base, "member", PASSWORD).status_code == 302


def test_it_adds_no_database_write_per_attempt(
    world: World, django_assert_max_num_queries: Any
) -> None:
    client = Client()
    _fail(client, "member", 5)
    # A refused attempt during a lockout reads the cache only: no query at all.
    with django_assert_max_num_queries(0):
        assert _try(client, "member", PASSWORD).status_code == 429
