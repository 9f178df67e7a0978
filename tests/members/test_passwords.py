"""Every user changes their own password; a forgotten one is reset by email (Django's views);
Django's four validators apply."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tests.conftest import PASSWORD, World, login

NEW_PASSWORD = "plum-tiger-lantern-42"


def _can_sign_in(username: str, password: str) -> bool:
    answer = Client().post("/accounts/login/", {"username": username, "password": password})
    return answer.status_code == 302


def test_it_lets_every_member_change_their_password(world: World) -> None:
    client = login("member")
    assert client.get("/accounts/password/change/").status_code == 200
    answer = client.post(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert answer.status_code == 302
    assert client.get("/").status_code == 200  # still signed in
    assert _can_sign_in("member", NEW_PASSWORD) and not _can_sign_in("member", PASSWORD)


def test_it_applies_the_password_rules(world: World) -> None:
    client = login("member")
    for weak, reason in [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("83927461029", "entirely numeric"),
        ("member99", "too similar"),
    ]:
        page = client.post(
            "/accounts/password/change/",
            {"old_password": PASSWORD, "new_password1": weak, "new_password2": weak},
        ).content.decode()
        assert reason in page, weak
    assert _can_sign_in("member", PASSWORD)


def test_it_needs_a_sign_in_to_change_a_password() -> None:
    answer = Client().get("/accounts/password/change/")
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")


def test_it_resets_a_forgotten_password_by_email_once(world: World) -> None:
    user = get_user_model().objects.get(username="member")
    user.email = "member@example.com"
    user.save()
    assert "Forgot your password?" in Client().get("/accounts/login/").content.decode()
    Client().post("/accounts/password/reset/", {"email": "MEMBER@example.com"})
    Client().post("/accounts/password/reset/", {"email": "nobody@example.com"})  # silent
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["member@example.com"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", str(mail.outbox[0].body))
    assert link
    client = Client()
    form = client.get(link.group(1), follow=True)
    client.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert _can_sign_in("member", NEW_PASSWORD)
    used = Client().get(link.group(1), follow=True).content.decode()
    assert 'data-testid="invalid-link"' in used
