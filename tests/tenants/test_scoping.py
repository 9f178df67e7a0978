from __future__ import annotations

import pytest

from ingest.models import UsageEvent
from tenants.models import ApiKey, Team
from tenants.scoping import TenantScopeError
from tests.conftest import World


def test_it_refuses_a_query_without_a_tenant(world: World) -> None:
    with pytest.raises(TenantScopeError):
        list(Team.objects.all())
    with pytest.raises(TenantScopeError):
        Team.objects.filter(slug="search").exists()
    with pytest.raises(TenantScopeError):
        UsageEvent.objects.count()


def test_it_refuses_to_create_a_row_without_a_tenant(world: World) -> None:
    with pytest.raises(TenantScopeError):
        Team.objects.create(slug="orphan", name="Orphan")


def test_it_scopes_every_query_to_one_tenant(world: World) -> None:
    assert list(Team.objects.for_tenant(world.tenant)) == [world.team]
    assert list(Team.objects.for_tenant(world.other_tenant)) == [world.other_team]
    keys = ApiKey.objects.for_tenant(world.tenant)
    assert {k.pk for k in keys} == {world.ingest.key.pk, world.read.key.pk}


def test_it_offers_a_loudly_named_escape_hatch(world: World) -> None:
    assert Team.unscoped_all_tenants.count() == 2


def test_it_lets_related_managers_follow_an_already_scoped_row(world: World) -> None:
    team = Team.objects.for_tenant(world.tenant).get(slug="search")
    assert {k.pk for k in ApiKey.objects.for_tenant(world.tenant).filter(team=team)} == {
        k.pk for k in team.apikey_set.all()
    }
