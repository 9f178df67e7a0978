"""Re-price previews nobody applied are deleted a month after they were asked for; a preview
a run applied stays with the run, and one still being computed is left to its worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from prices import services as prices
from prices import tasks
from prices.models import RepricePreview
from tenants.models import Tenant
from tests.billing.helpers import EARLIER
from tests.conftest import World, login

pytestmark = pytest.mark.django_db


def _computed(tenant: Tenant) -> RepricePreview:
    preview, _ = prices.request_preview(tenant, EARLIER, again=True)
    return prices.run_preview(preview.tenant_id, preview.pk)


def _age(*previews: RepricePreview, days: int = 31) -> None:
    pks = [p.pk for p in previews]
    asked = timezone.now() - timedelta(days=days)
    # Test setup across tenants: the previews are aged as the passing days would.
    RepricePreview.unscoped_all_tenants.filter(pk__in=pks).update(requested_at=asked)


def test_it_prunes_old_unapplied_previews_and_keeps_applied_running_and_recent(
    world: World,
) -> None:
    unapplied, applied = _computed(world.tenant), _computed(world.tenant)
    owner = get_user_model().objects.get(username="owner")
    run = prices.request_reprice(world.tenant, EARLIER, applied.pricing_version, owner, applied)
    queued, _ = prices.request_preview(world.tenant, EARLIER, again=True)  # its worker is late
    _age(unapplied, applied, queued)
    recent = _computed(world.tenant)

    assert prices.prune_previews(world.tenant.pk) == 1
    kept = RepricePreview.objects.for_tenant(world.tenant).values_list("pk", flat=True)
    assert sorted(kept) == sorted([applied.pk, queued.pk, recent.pk])
    client = login("owner")
    assert client.get(f"/prices/reprice/preview/{unapplied.pk}/").status_code == 404
    assert client.get(f"/prices/reprice/preview/{recent.pk}/").status_code == 200
    run_page = client.get(f"/prices/reprice/{run.pk}/")
    assert run_page.status_code == 200 and run_page.context["run"].preview == applied


def test_it_prunes_each_tenant_from_beat_and_one_tenant_never_touches_another(
    world: World,
) -> None:
    mine, theirs = _computed(world.tenant), _computed(world.other_tenant)
    _age(mine, theirs)
    theirs_recent = _computed(world.other_tenant)

    assert prices.prune_previews(world.tenant.pk) == 1
    assert RepricePreview.objects.for_tenant(world.other_tenant).count() == 2
    assert tasks.prune_previews() == 1  # beat's run: the other tenant's old one
    remaining = RepricePreview.objects.for_tenant(world.other_tenant).values_list("pk", flat=True)
    assert list(remaining) == [theirs_recent.pk]
