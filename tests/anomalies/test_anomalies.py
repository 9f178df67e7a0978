"""Anomalies end to end over hourly rollups: opened once, notified once, cleared, pages."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from alerts.models import Alert, AlertChannel
from anomalies.models import Anomaly
from anomalies.services import detect
from rollups.models import HourlyRollup
from tests.anomalies.test_detection import MONDAY_10, usual_calls
from tests.conftest import World, login


def _rollup(
    world: World, hour: datetime, calls: int, feature: str = "chat", model: str = "gpt-4o-mini"
) -> None:
    HourlyRollup.objects.create(
        tenant=world.tenant, hour=hour, team_pk=world.team.pk, feature=feature, provider="openai",
        model=model, environment="production", requests=calls, cost_usd=Decimal("0.01") * calls,
        input_tokens=1000 * calls, output_tokens=200 * calls, cache_read_tokens=700 * calls,
    )  # fmt: skip


def _history(world: World, until: datetime, weeks: int = 5) -> None:
    hour = until - timedelta(weeks=weeks)
    rows = []
    while hour < until:
        n = usual_calls(hour)
        rows.append(
            HourlyRollup(
                tenant=world.tenant,
                hour=hour,
                team_pk=world.team.pk,
                feature="chat",
                provider="openai",
                model="gpt-4o-mini",
                environment="production",
                requests=n,
                cost_usd=Decimal("0.01") * n,
                input_tokens=1000 * n,
                output_tokens=200 * n,
                cache_read_tokens=700 * n,
            )
        )
        hour += timedelta(hours=1)
    HourlyRollup.objects.for_tenant(world.tenant).bulk_create(rows)


@pytest.fixture
def spiked(world: World) -> World:
    AlertChannel.objects.create(
        tenant=world.tenant, name="ops", kind="email", target="ops@example.com"
    )
    _history(world, MONDAY_10)
    _rollup(world, MONDAY_10, 1300)  # 3.25x a usual Monday 10:00
    _rollup(world, MONDAY_10 + timedelta(hours=1), 1250)  # still spiking
    _rollup(world, MONDAY_10 + timedelta(hours=2), 400)  # back to normal
    return world


def test_it_opens_a_spike_once_and_notifies_once(spiked: World) -> None:
    detect(spiked.tenant, MONDAY_10, MONDAY_10)
    detect(spiked.tenant, MONDAY_10, MONDAY_10 + timedelta(hours=1))  # a rerun and the next hour
    (anomaly,) = Anomaly.objects.for_tenant(spiked.tenant)
    assert (anomaly.kind, anomaly.severity, anomaly.status) == ("volume_spike", "critical", "open")
    assert anomaly.last_hour == MONDAY_10 + timedelta(hours=1)
    (alert,) = Alert.objects.for_tenant(spiked.tenant)
    assert alert.source == "anomaly" and "chat" in alert.title
    assert [d.channel.name for d in alert.deliveries.all()] == ["ops"]  # critical: every channel


def test_it_clears_when_the_feature_is_back_to_normal(spiked: World) -> None:
    detect(spiked.tenant, MONDAY_10, MONDAY_10 + timedelta(hours=2))
    (anomaly,) = Anomaly.objects.for_tenant(spiked.tenant)
    assert (anomaly.status, anomaly.resolved_by) == ("resolved", "cleared")


def test_it_finds_a_new_model_on_a_feature(world: World) -> None:
    _history(world, MONDAY_10)
    _rollup(world, MONDAY_10, 380)
    _rollup(world, MONDAY_10, 20, model="gpt-4o")
    HourlyRollup.objects.for_tenant(world.tenant).filter(hour=MONDAY_10, model="gpt-4o").update(
        cost_usd=Decimal("3.3")
    )
    opened = {(a.kind, a.model, a.severity) for a in detect(world.tenant, MONDAY_10, MONDAY_10)}
    # The fallback also lifts the feature's cost per call by about 77%: both are reported.
    assert opened == {
        ("model_drift", "openai/gpt-4o", "critical"),
        ("cost_per_request", "", "warning"),
    }


def test_it_shows_anomalies_with_their_runbook(spiked: World) -> None:
    detect(spiked.tenant, MONDAY_10, MONDAY_10 + timedelta(hours=1))
    anomaly = Anomaly.objects.for_tenant(spiked.tenant).get()
    for username in ("owner", "finance", "member"):
        page = login(username).get("/anomalies/").content.decode()
        assert "Volume spike: chat" in page and "Review error logs for retry storms" in page
    detail = login("member").get(f"/anomalies/{anomaly.pk}/").content.decode()
    assert (
        "consider rate limiting or feature flag deactivation" in detail
        and 'data-figure="anomaly"' in detail
    )


def test_it_lets_admins_acknowledge_and_resolve(spiked: World) -> None:
    detect(spiked.tenant, MONDAY_10, MONDAY_10 + timedelta(hours=1))
    anomaly = Anomaly.objects.for_tenant(spiked.tenant).get()
    assert login("member").post(f"/anomalies/{anomaly.pk}/acknowledge/").status_code == 403
    login("owner").post(f"/anomalies/{anomaly.pk}/acknowledge/")
    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.acknowledged_by) == ("acknowledged", "owner")
    login("owner").post(f"/anomalies/{anomaly.pk}/resolve/")
    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.resolved_by) == ("resolved", "owner")


def test_it_answers_404_for_another_tenants_anomaly(spiked: World) -> None:
    detect(spiked.tenant, MONDAY_10, MONDAY_10)
    anomaly = Anomaly.objects.for_tenant(spiked.tenant).get()
    outsider = login("outsider")
    assert outsider.get(f"/anomalies/{anomaly.pk}/").status_code == 404
    assert outsider.post(f"/anomalies/{anomaly.pk}/resolve/").status_code == 404
    assert "chat" not in outsider.get("/anomalies/").content.decode()


def test_it_saves_thresholds_and_checks_them(world: World) -> None:
    client = login("owner")
    bad = client.post(
        "/anomalies/thresholds/",
        {
            "volume_warning": "3",
            "volume_critical": "2",
            "cost_warning": "0.5",
            "cost_critical": "1",
            "cache_warning": "0.6",
            "cache_critical": "0.4",
            "drift_critical_ratio": "1.5",
            "min_z": "3",
            "min_requests": "30",
        },
    )
    assert "at least the warning level" in bad.content.decode()
    ok = client.post(
        "/anomalies/thresholds/",
        {
            "volume_warning": "2",
            "volume_critical": "4",
            "cost_warning": "0.5",
            "cost_critical": "1",
            "cache_warning": "0.6",
            "cache_critical": "0.4",
            "drift_critical_ratio": "1.5",
            "min_z": "3",
            "min_requests": "30",
        },
    )
    assert ok.status_code == 302
    assert login("member").get("/anomalies/thresholds/").status_code == 403
