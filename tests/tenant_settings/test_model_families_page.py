"""`/settings/model-families/`: every member reads the rules, an admin changes them, and
another tenant never sees them."""

from __future__ import annotations

from typing import Any

from django.test import Client

from audit.models import Action, AuditEntry
from pricing.families import ModelNames
from pricing.models import ModelFamilyRule
from pricing.services import set_family_rule
from tests.conftest import World, login

URL = "/settings/model-families/"


def _add(client: Client, match: str, family: str) -> Any:
    return client.post(URL, {"action": "add_rule", "match": match, "family": family})


def test_it_lets_an_admin_add_and_delete_a_rule(world: World) -> None:
    owner = login("owner")
    response = _add(owner, "Ours-", "In-house")
    assert response.status_code == 302
    assert ModelNames.of(world.tenant).family("inhouse", "ours-7") == "In-house"
    page = owner.get(URL).content.decode()
    assert "<code>ours-</code>" in page and "In-house" in page and "Add rule" in page
    assert (
        AuditEntry.objects.for_tenant(world.tenant).filter(action=Action.MODEL_FAMILY_SET).exists()
    )
    owner.post(URL, {"action": "delete_rule", "match": "ours-"})
    assert not ModelFamilyRule.objects.for_tenant(world.tenant).exists()


def test_it_names_the_field_of_a_bad_rule(world: World) -> None:
    page = _add(login("owner"), "gpt 4", "Four").content.decode()
    assert "no spaces" in page
    assert not ModelFamilyRule.objects.for_tenant(world.tenant).exists()


def test_it_shows_a_member_the_rules_without_the_means_to_change_them(world: World) -> None:
    set_family_rule(world.tenant, "ours-", "In-house")
    member = login("member")
    page = member.get(URL).content.decode()
    assert "In-house" in page and "Claude 3.5" in page  # theirs and the built-in ones
    assert "Add rule" not in page and "delete_rule" not in page
    assert _add(member, "gpt-", "Everything").status_code == 403
    assert (
        login("finance").post(URL, {"action": "delete_rule", "match": "ours-"}).status_code == 403
    )
    assert ModelFamilyRule.objects.for_tenant(world.tenant).count() == 1


def test_it_keeps_each_tenants_rules_to_itself(world: World) -> None:
    set_family_rule(world.tenant, "ours-", "Acme in-house")
    outsider = login("outsider")
    assert "Acme in-house" not in outsider.get(URL).content.decode()
    outsider.post(URL, {"action": "delete_rule", "match": "ours-"})
    assert ModelFamilyRule.objects.for_tenant(world.tenant).count() == 1
    assert Client().get(URL).status_code == 302  # signed out: to the login
