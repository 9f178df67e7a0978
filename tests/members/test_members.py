"""The members page: admins invite by email, change roles and remove members; a tenant always
keeps an admin; invitation links work once and expire; nothing of another tenant is reachable."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from members.tokens import invite_tokens
from tenants.models import Membership, Role
from tests.conftest import PASSWORD, World, login

NEW_PASSWORD = "plum-tiger-lantern-42"


def _invite(client: Client, email: str, role: str = "finance") -> Any:
    return client.post("/settings/members/", {"action": "invite", "email": email, "role": role})


def _link() -> str:
    found = re.search(r"http://testserver(/accounts/invite/\S+/)", str(mail.outbox[-1].body))
    assert found, mail.outbox[-1].body
    return found.group(1)


def _accept(link: str, password: str = NEW_PASSWORD) -> Any:
    client = Client()
    form = client.get(link, follow=True)  # Django moves the token into the session
    target = form.redirect_chain[-1][0] if form.redirect_chain else link
    return client.post(target, {"new_password1": password, "new_password2": password})


def _sign_in(username: str, password: str = NEW_PASSWORD) -> Client:
    client = Client()
    answer = client.post("/accounts/login/", {"username": username, "password": password})
    assert answer.status_code == 302, answer.content.decode()[:500]
    return client


def _membership(world: World, username: str) -> Membership:
    return Membership.objects.for_tenant(world.tenant).get(user__username=username)


@pytest.mark.parametrize(("username", "status"), [("finance", 403), ("member", 403)])
def test_it_lets_only_admins_in(world: World, username: str, status: int) -> None:
    assert login(username).get("/settings/members/").status_code == status
    assert login("owner").get("/settings/members/").status_code == 200


def test_it_shows_an_outsider_only_their_own_tenant(world: World) -> None:
    page = login("outsider").get("/settings/members/").content.decode()
    shown = set(re.findall(r'data-member="([^"]+)"', page))
    assert shown == {"outsider"}


def test_it_invites_someone_who_sets_a_password_and_signs_in_with_that_role(
    world: World,
) -> None:
    answer = _invite(login("owner"), "Dana@Example.com", "finance")
    assert answer.status_code == 302
    message = mail.outbox[-1]
    assert message.to == ["dana@example.com"] and "Acme" in message.subject
    assert "as Finance" in message.body and "dana@example.com" in message.body
    # Not a member who can sign in before choosing a password.
    assert (
        Client()
        .post("/accounts/login/", {"username": "dana@example.com", "password": ""})
        .status_code
        == 200
    )
    link = _link()
    assert _accept(link).status_code == 302
    dana = _sign_in("dana@example.com")
    assert dana.get("/chargeback/").status_code == 200  # finance
    assert dana.get("/settings/").status_code == 403
    # The link worked once.
    used = Client().get(link, follow=True).content.decode()
    assert 'data-testid="invalid-link"' in used


def test_it_refuses_an_expired_invitation(world: World) -> None:
    _invite(login("owner"), "late@example.com")
    user = get_user_model().objects.get(username="late@example.com")
    fresh = _link()
    # The same invitation as it was mailed 8 days ago (links last INVITE_LINK_DAYS = 7).
    sent = invite_tokens._num_seconds(datetime.now() - timedelta(days=8))
    old_token = invite_tokens._make_token_with_timestamp(user, sent, invite_tokens.secret)
    old = fresh.rsplit("/", 2)[0] + f"/{old_token}/"
    assert 'data-testid="invalid-link"' in Client().get(old, follow=True).content.decode()
    assert _accept(old).status_code == 200
    assert not get_user_model().objects.get(pk=user.pk).has_usable_password()
    assert 'data-testid="invalid-link"' not in Client().get(fresh, follow=True).content.decode()


def test_it_refuses_a_tampered_or_reset_token_as_an_invitation(world: World) -> None:
    _invite(login("owner"), "eve@example.com")
    link = _link()
    tampered = link.rstrip("/")[:-2] + "zz/"
    assert 'data-testid="invalid-link"' in Client().get(tampered, follow=True).content.decode()


def test_it_adds_an_existing_person_without_a_new_password(world: World) -> None:
    outsider = get_user_model().objects.get(username="outsider")
    outsider.email = "out@example.com"
    outsider.save()
    _invite(login("owner"), "out@example.com", "viewer")
    assert "Sign in as outsider" in mail.outbox[-1].body
    assert "/accounts/invite/" not in mail.outbox[-1].body
    assert _membership(world, "outsider").role == Role.VIEWER
    # They sign in with their own password and can switch to the new tenant.
    assert login("outsider").post("/tenant/switch/", {"tenant": "acme"}).status_code == 302


def test_it_changes_a_role_from_the_next_request_on(world: World) -> None:
    member = login("member")
    assert member.get("/chargeback/").status_code == 403
    admin = login("owner")
    admin.post(
        "/settings/members/",
        {"action": "change_role", "id": _membership(world, "member").pk, "role": "finance"},
    )
    assert member.get("/chargeback/").status_code == 200  # same session, next request


def test_it_never_leaves_a_tenant_without_an_admin(world: World) -> None:
    admin = login("owner")
    owner = _membership(world, "owner")
    page = admin.post(
        "/settings/members/",
        {"action": "change_role", "id": owner.pk, "role": "viewer"},
        follow=True,
    ).content.decode()
    assert "A tenant needs an admin" in page
    page = admin.post(
        "/settings/members/", {"action": "remove", "id": owner.pk}, follow=True
    ).content.decode()
    assert "A tenant needs an admin" in page
    assert _membership(world, "owner").role == Role.ADMIN
    # With a second admin, the first may step down.
    admin.post(
        "/settings/members/",
        {"action": "change_role", "id": _membership(world, "finance").pk, "role": "admin"},
    )
    admin.post("/settings/members/", {"action": "change_role", "id": owner.pk, "role": "viewer"})
    assert _membership(world, "owner").role == Role.VIEWER
    assert admin.get("/settings/members/").status_code == 403


def test_it_removes_a_member_who_then_sees_nothing(world: World) -> None:
    member = login("member")
    login("owner").post(
        "/settings/members/", {"action": "remove", "id": _membership(world, "member").pk}
    )
    assert not Membership.objects.for_tenant(world.tenant).filter(user__username="member")
    assert member.get("/").status_code == 404


def test_it_answers_404_for_another_tenants_member(world: World) -> None:
    theirs = Membership.objects.for_tenant(world.other_tenant).get(user__username="outsider")
    admin = login("owner")
    for action in ("change_role", "remove", "unlock"):
        answer = admin.post(
            "/settings/members/", {"action": action, "id": theirs.pk, "role": "viewer"}
        )
        assert answer.status_code == 404
    assert Membership.objects.for_tenant(world.other_tenant).get(pk=theirs.pk).role == Role.ADMIN


def test_it_refuses_inviting_a_member_twice(world: World) -> None:
    admin = login("owner")
    _invite(admin, "twice@example.com")
    page = _invite(admin, "twice@example.com").content.decode()
    assert "already a member" in page


def test_it_shows_and_lifts_a_lockout(world: World) -> None:
    for _ in range(5):
        Client().post("/accounts/login/", {"username": "member", "password": "wrong"})
    admin = login("owner")
    assert "locked out" in admin.get("/settings/members/").content.decode()
    admin.post("/settings/members/", {"action": "unlock", "id": _membership(world, "member").pk})
    assert "locked out" not in admin.get("/settings/members/").content.decode()
    assert _sign_in("member", PASSWORD)
