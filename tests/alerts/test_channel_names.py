"""One channel of each name per tenant: the form says so, the database holds it when two saves
race, and channels that already shared a name before the rule are named apart."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

from alerts.models import AlertChannel
from alerts.services import ChannelNameTaken, create_channel
from audit.models import Action, AuditEntry
from tenant_settings.forms import ChannelForm
from tests.conftest import World

pytestmark = pytest.mark.django_db
migration = importlib.import_module("alerts.migrations.0002_channel_name_once_per_tenant")


def _form(world: World, name: str) -> ChannelForm:
    data = {"name": name, "kind": "email", "target": "ops@example.com"}
    form = ChannelForm(data, instance=AlertChannel(tenant=world.tenant))
    assert form.is_valid(), form.errors
    return form


def test_it_refuses_the_second_of_two_racing_saves_of_one_name(world: World) -> None:
    first, second = _form(world, "ops"), _form(world, "ops")  # both checked before either saved
    create_channel(first.save(commit=False), actor="owner")
    with pytest.raises(ChannelNameTaken, match="already a channel named 'ops'"):
        create_channel(second.save(commit=False), actor="owner")
    assert AlertChannel.objects.for_tenant(world.tenant).count() == 1
    created = AuditEntry.objects.for_tenant(world.tenant).filter(action=Action.CHANNEL_CREATED)
    assert created.count() == 1
    create_channel(_form(world, "ops-2").save(commit=False))  # the tenant can go on saving


def test_it_names_apart_channels_that_already_shared_a_name(world: World) -> None:
    with connection.cursor() as cursor:  # as an installation from before the rule
        cursor.execute(
            f"ALTER TABLE {AlertChannel._meta.db_table} DROP CONSTRAINT channel_name_once_per_tenant"
        )
    for tenant, name in [(world.tenant, "ops")] * 3 + [
        (world.tenant, "ops (2)"),
        (world.other_tenant, "ops"),
    ]:
        AlertChannel.objects.for_tenant(tenant).create(
            tenant=tenant, name=name, kind="email", target="ops@example.com"
        )
    migration.rename_duplicates(apps, None)
    mine = AlertChannel.objects.for_tenant(world.tenant).order_by("pk")
    assert list(mine.values_list("name", flat=True)) == ["ops", "ops (3)", "ops (4)", "ops (2)"]
    theirs = AlertChannel.objects.for_tenant(world.other_tenant).values_list("name", flat=True)
    assert list(theirs) == ["ops"]
