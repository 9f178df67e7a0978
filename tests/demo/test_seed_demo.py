"""`seed_demo`: what `make demo` shows, and that running it again changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db.models import Sum

from demo import seeding as demo
from ingest.models import PendingBatch, UsageEvent
from rollups.models import DailyRollup
from tenants.models import Membership, Team, Tenant
from tests.conftest import sign_in_request

EVENTS = 3000


def seed(*args: str, events: int = EVENTS) -> str:
    out = StringIO()
    call_command("seed_demo", *args, events=events, stdout=out)
    return out.getvalue()


def acme() -> Tenant:
    return Tenant.objects.get(slug="acme")


@pytest.mark.django_db
def test_it_creates_acme_with_the_three_demo_logins() -> None:
    seed()
    tenant = acme()
    assert tenant.name == "Acme Corp"
    roles = {
        m.user.username: m.role
        for m in Membership.objects.for_tenant(tenant).select_related("user")
    }
    assert roles == {"admin": "admin", "finance": "finance", "viewer": "viewer"}
    for username in roles:
        signed_in = authenticate(sign_in_request(), username=username, password="costboard-demo")
        assert signed_in is not None
    teams = Team.objects.for_tenant(tenant)
    assert teams.count() >= 5
    assert all(team.cost_center for team in teams)


@pytest.mark.django_db
def test_it_fills_the_rollups_for_weeks_with_one_unpriced_model() -> None:
    output = seed()
    tenant = acme()
    rollups = DailyRollup.objects.for_tenant(tenant)
    assert rollups.values("day").distinct().count() >= 30
    assert rollups.aggregate(n=Sum("requests"))["n"] == EVENTS
    assert not PendingBatch.objects.for_tenant(tenant).exists()
    unpriced = set(rollups.filter(unpriced_requests__gt=0).values_list("provider", "model"))
    assert unpriced == {("acme-internal", "acme-llm-7b")}
    priced = rollups.exclude(provider="acme-internal").aggregate(c=Sum("cost_usd"))["c"]
    assert priced > Decimal(0)
    assert rollups.filter(team_pk=0).exists()  # some usage belongs to no team
    assert f"{EVENTS:,} events over 35 days" in output


@pytest.mark.django_db
def test_it_shows_the_smart_reply_weekend_as_the_costliest_days() -> None:
    now = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)  # a Wednesday
    demo.seed(EVENTS, now=now)
    by_day = (
        DailyRollup.objects.for_tenant(acme())
        .values("day")
        .annotate(cost=Sum("cost_usd"))
        .order_by("-cost")
    )
    launch = demo.launch_friday(now).date()
    top_two = {row["day"] for row in by_day[:2]}
    assert launch.weekday() == 4
    assert top_two <= {launch + timedelta(days=d) for d in range(4)}  # Friday to Monday


@pytest.mark.django_db
def test_it_does_nothing_when_run_again() -> None:
    seed()
    ids = set(UsageEvent.objects.for_tenant(acme()).values_list("event_id", flat=True))
    output = seed()
    assert "already has 3,000 events" in output
    assert UsageEvent.objects.for_tenant(acme()).count() == EVENTS
    assert ids == {f"demo-{n}" for n in range(1, EVENTS + 1)}


@pytest.mark.django_db
def test_it_reseeds_from_scratch_with_reset() -> None:
    seed()
    old_tenant = acme().pk
    output = seed("--reset", events=1000)
    assert "deleted tenant acme" in output
    assert acme().pk != old_tenant
    assert UsageEvent.objects.for_tenant(acme()).count() == 1000
    assert DailyRollup.objects.for_tenant(acme()).aggregate(n=Sum("requests"))["n"] == 1000


@pytest.mark.django_db
def test_it_rejects_a_count_below_one() -> None:
    with pytest.raises(CommandError, match="at least 1"):
        seed(events=0)
