"""`seed_demo`: what `make demo` shows, and that running it again changes nothing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db.models import Sum

from demo import seeding as demo
from demo.generator import launch_friday, storm_hour
from ingest.models import PendingBatch, UsageEvent
from rollups.models import DailyRollup, HourlyRollup, TagDailyRollup
from rollups.tags import chosen
from tenants.models import Membership, Team, Tenant
from tests.conftest import sign_in_request
from tests.rollups.helpers import assert_rollups_match_raw

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
    assert rollups.values("day").distinct().count() == 90
    assert rollups.aggregate(n=Sum("requests"))["n"] == EVENTS
    assert not PendingBatch.objects.for_tenant(tenant).exists()
    unpriced = set(rollups.filter(unpriced_requests__gt=0).values_list("provider", "model"))
    assert unpriced == {("acme-internal", "acme-llm-7b")}
    priced = rollups.exclude(provider="acme-internal").aggregate(c=Sum("cost_usd"))["c"]
    assert priced > Decimal(0)
    assert rollups.filter(team_pk=0).exists()  # some usage belongs to no team
    assert f"{EVENTS:,} events over 90 days" in output


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
    launch = launch_friday(now).date()
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


NOW = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.django_db
def test_it_rolls_the_demo_up_by_customer_tier_and_prompt_version() -> None:
    demo.seed(EVENTS, now=NOW)
    tenant = acme()
    assert [d.key for d in chosen(tenant)] == ["customer_tier", "prompt_version"]
    assert chosen(tenant)[0].history_from == (NOW - timedelta(days=89)).date()
    tags = TagDailyRollup.objects.for_tenant(tenant)
    tiers = dict(
        tags.filter(tag_key="customer_tier").values_list("tag_value").annotate(n=Sum("requests"))
    )
    # Calls for end users carry a tier, free the most; internal jobs (code review) carry none.
    assert set(tiers) == {"free", "pro", "enterprise", ""}
    assert tiers["free"] > tiers["pro"] > tiers["enterprise"] > 0
    assert sum(tiers.values()) == EVENTS
    # The prompt rollout: only v1 in the first month, v3 the most used in the last week.
    versions = tags.filter(tag_key="prompt_version")
    first_month = versions.filter(day__lt=(NOW - timedelta(days=60)).date())
    assert set(first_month.values_list("tag_value", flat=True)) == {"v1"}
    last_week = dict(
        versions.filter(day__gt=(NOW - timedelta(days=7)).date())
        .values_list("tag_value")
        .annotate(n=Sum("requests"))
    )
    assert max(last_week, key=last_week.__getitem__) == "v3"
    assert versions.aggregate(n=Sum("requests"))["n"] == EVENTS
    assert_rollups_match_raw(tenant)


@pytest.mark.django_db
def test_it_gives_each_feature_its_routes_and_mostly_successful_calls() -> None:
    demo.seed(EVENTS, now=NOW)
    rollups = DailyRollup.objects.for_tenant(acme())
    routes = set(rollups.values_list("feature", "endpoint").distinct())
    assert ("chat-assistant", "/v1/chat") in routes
    assert ("summarization", "/v1/summarize") in routes
    assert len(routes) >= 10 and all(endpoint.startswith("/v1/") for _, endpoint in routes)
    by_status = dict(rollups.values_list("status").annotate(n=Sum("requests")))
    assert by_status["2xx"] > 0.9 * EVENTS
    assert {"4xx", "429", "5xx"} <= set(by_status)


@pytest.mark.django_db
def test_it_shows_a_retry_storm_hour_of_429s_and_5xx() -> None:
    demo.seed(8000, now=NOW)
    storm = storm_hour(NOW)
    assert timedelta(days=1) < NOW - storm < timedelta(days=7)
    failed: Counter[datetime] = Counter()
    calls: Counter[datetime] = Counter()
    rows = HourlyRollup.objects.for_tenant(acme()).values_list("hour", "status", "requests")
    for hour, status, requests in rows:
        calls[hour] += requests
        failed[hour] += requests if status in ("429", "5xx") else 0
    others = sum(failed.values()) - failed[storm], sum(calls.values()) - calls[storm]
    assert failed[storm] / calls[storm] > 0.3
    assert others[0] / others[1] < 0.05  # a few percent of normal calls are 429 or 5xx
    # Clients retried the failures: the storm hour is busier than the same hour a week before.
    assert calls[storm] > 2 * calls[storm - timedelta(days=7)]
