"""The settings page's tag dimensions: admins choose keys, the worker re-rolls their history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from ingest.services import ingest_events
from rollups.models import TagDimension
from rollups.services import roll_up_all_pending
from tests.conftest import World, event, login
from tests.worker import celery_worker, wait_until


def _tag_rows(world: World) -> list[dict[str, object]] | None:
    response = Client().get("/api/v1/usage?group_by=tag:tier", **world.read.auth)
    return response.json()["rows"] if response.status_code == 200 else None


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_it_lets_an_admin_choose_keys_and_the_worker_re_rolls_history(world: World) -> None:
    now = datetime.now(UTC).isoformat()
    events = [event(1, timestamp=now, tags={"tier": "pro"}), event(2, timestamp=now)]
    ingest_events(world.ingest.key, events)
    roll_up_all_pending(world.tenant.pk)
    with celery_worker():
        page = login("owner").post(
            "/settings/", {"action": "set_tags", "tag_keys": "tier"}, follow=True
        )
        assert "Re-rolling tier" in page.content.decode()
        rows = wait_until(lambda: _tag_rows(world), timeout=30)
    assert sorted((r["tag:tier"], r["requests"]) for r in rows) == [("(none)", 1), ("pro", 1)]
    assert "<code>tier</code>" in login("owner").get("/settings/").content.decode()


def test_it_explains_a_refused_key(world: World) -> None:
    page = login("owner").post("/settings/", {"action": "set_tags", "tag_keys": "a,b,c,d,e,f"})
    assert page.status_code == 200
    assert "at most 5 tag keys" in page.content.decode()
    assert not TagDimension.objects.for_tenant(world.tenant).exists()


def test_it_keeps_members_and_other_tenants_out(world: World) -> None:
    posted = {"action": "set_tags", "tag_keys": "tier"}
    assert login("member").post("/settings/", posted).status_code == 403
    assert login("outsider").post("/settings/", posted).status_code == 302
    assert not TagDimension.objects.for_tenant(world.tenant).exists()
    assert TagDimension.objects.for_tenant(world.other_tenant).get().key == "tier"
    assert "<code>tier</code>" not in login("owner").get("/settings/").content.decode()
