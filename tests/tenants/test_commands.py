from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from tenants.models import ApiKey, Membership, Team, Tenant
from tests.conftest import event, post_json


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_it_sets_up_a_tenant_from_the_command_line() -> None:
    run("create_tenant", "acme", "--name", "Acme Corp")
    run("create_team", "acme", "search", "--name", "Search", "--cost-center", "CC-1001")
    run("add_member", "acme", "alice", "--role", "finance", "--password", "s3cret-pass")
    tenant = Tenant.objects.get(slug="acme")
    team = Team.objects.for_tenant(tenant).get()
    assert (tenant.name, team.slug, team.cost_center) == ("Acme Corp", "search", "CC-1001")
    membership = Membership.objects.for_tenant(tenant).get()
    assert membership.role == "finance" and membership.user.check_password("s3cret-pass")


@pytest.mark.django_db
def test_it_prints_a_working_key_alone_on_the_last_line_and_stores_only_its_hash() -> None:
    run("create_tenant", "acme")
    run("create_team", "acme", "search")
    output = run("create_api_key", "acme", "--team", "search", "--name", "svc")
    token = output.strip().splitlines()[-1]
    assert token.startswith("cb_") and " " not in token
    key = ApiKey.objects.for_tenant(Tenant.objects.get(slug="acme")).get()
    assert token.split("_", 2)[2] not in (key.secret_hash, key.prefix)
    assert key.secret_hash == hashlib.sha256(token.split("_", 2)[2].encode()).hexdigest()
    response = post_json(
        Client(), "/api/v1/events", event(1), None, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 202


@pytest.mark.django_db
def test_it_changes_a_members_role_instead_of_adding_a_second_one() -> None:
    run("create_tenant", "acme")
    run("add_member", "acme", "bob", "--role", "viewer")
    run("add_member", "acme", "bob", "--role", "admin")
    tenant = Tenant.objects.get(slug="acme")
    assert list(Membership.objects.for_tenant(tenant).values_list("role", flat=True)) == ["admin"]
    assert not get_user_model().objects.get(username="bob").has_usable_password()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create_team", "nope", "search"), "tenant 'nope' does not exist"),
        (("create_api_key", "acme", "--team", "ghost"), "team 'ghost' does not exist"),
        (("create_tenant", "acme"), "already exists"),
        (("create_tenant", "bad slug!"), "slug"),
        (("create_tenant", "zoned", "--timezone", "Mars/Base"), "time zone"),
        (("add_member", "nope", "x", "--role", "admin"), "tenant 'nope' does not exist"),
        (("add_member", "acme", "x", "--role", "admin", "--password", "short"), "too short"),
        (("add_member", "acme", "x", "--role", "admin", "--password", "password1"), "too common"),
    ],
)
def test_it_explains_bad_input_and_exits_non_zero(args: tuple[str, ...], message: str) -> None:
    run("create_tenant", "acme")
    with pytest.raises(CommandError, match=message):
        run(*args)


@pytest.mark.django_db
def test_it_rejects_an_unknown_role() -> None:
    run("create_tenant", "acme")
    with pytest.raises(CommandError):
        run("add_member", "acme", "x", "--role", "owner")
