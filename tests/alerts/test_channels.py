"""Every channel against a real HTTP server on 127.0.0.1, asserting payloads and signatures."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from django.core import mail

from alerts.delivery import MAX_ATTEMPTS, attempt_delivery
from alerts.models import AlertChannel, Delivery
from alerts.services import notify
from tests.conftest import World
from tests.httpcapture import capture_server
from tests.worker import celery_worker, wait_until

# The receivers below listen on 127.0.0.1, which deliveries reach only when the operator allows it.
pytestmark = pytest.mark.usefixtures("loopback_receivers")


def _channel(world: World, kind: str, target: str, secret: str = "") -> AlertChannel:
    return AlertChannel.objects.create(
        tenant=world.tenant, name=kind, kind=kind, target=target, secret=secret
    )


def _alert(world: World, channels: list[AlertChannel], severity: str = "critical"):  # type: ignore[no-untyped-def]
    return notify(
        world.tenant,
        channels,
        source="budget",
        title="Search (monthly): 100% of $10.00 reached",
        message="Budget Search has spent $10.00 of $10.00.",
        severity=severity,
        details={"budget": "Search (monthly)", "threshold": "100%"},
    )


def _deliver_all(world: World) -> None:
    for delivery in Delivery.objects.for_tenant(world.tenant):
        attempt_delivery(world.tenant.pk, delivery.pk, final=False)


def test_it_posts_the_seeds_slack_attachment(world: World) -> None:
    with capture_server() as slack:
        _alert(world, [_channel(world, "slack", f"{slack.url}/hooks/T1")])
        _deliver_all(world)
    (received,) = slack.requests
    attachment = received.json()["attachments"][0]
    assert received.path == "/hooks/T1"
    assert attachment["color"] == "danger" and attachment["footer"] == "Costboard"
    assert attachment["title"].startswith("LLM Cost Alert - CRITICAL")
    assert {"title": "Severity", "value": "critical", "short": True} in attachment["fields"]
    assert Delivery.objects.for_tenant(world.tenant).get().status == "sent"


@pytest.mark.parametrize(
    ("severity", "expected"), [("warning", "warning"), ("critical", "critical")]
)
def test_it_triggers_pagerduty_events_v2_with_the_severity(
    world: World, severity: str, expected: str
) -> None:
    with capture_server(status=202) as pagerduty:
        alert = _alert(
            world,
            [_channel(world, "pagerduty", f"{pagerduty.url}/v2/enqueue", "R0UT1NG")],
            severity,
        )
        _deliver_all(world)
    body = pagerduty.requests[0].json()
    assert (body["routing_key"], body["event_action"]) == ("R0UT1NG", "trigger")
    assert body["payload"]["severity"] == expected and body["payload"]["source"] == "costboard"
    assert body["dedup_key"] == f"costboard-{world.tenant.pk}-{alert.pk}"


def test_it_signs_the_webhook_with_hmac_sha256(world: World) -> None:
    with capture_server() as hook:
        _alert(world, [_channel(world, "webhook", f"{hook.url}/costboard", "s3cret")])
        _deliver_all(world)
    received = hook.requests[0]
    timestamp = received.headers["X-Costboard-Timestamp"]
    expected = hmac.new(
        b"s3cret", timestamp.encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    assert received.headers["X-Costboard-Signature"] == f"sha256={expected}"
    assert received.json()["tenant"] == "acme" and received.json()["severity"] == "critical"


def test_it_emails_through_djangos_backend(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _alert(world, [_channel(world, "email", "ops@example.com, cfo@example.com")])
    _deliver_all(world)
    (message,) = mail.outbox
    assert message.to == ["ops@example.com", "cfo@example.com"]
    assert message.subject == "[Costboard] Search (monthly): 100% of $10.00 reached"


def test_it_marks_a_failing_channel_failed_on_the_last_attempt(world: World) -> None:
    with capture_server(status=500) as broken:
        _alert(world, [_channel(world, "slack", broken.url)])
        delivery = Delivery.objects.for_tenant(world.tenant).get()
        assert attempt_delivery(world.tenant.pk, delivery.pk, final=False) == "pending"
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        attempt_delivery(world.tenant.pk, delivery.pk, final=True)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.last_error == "the receiver answered HTTP 500"


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_it_retries_a_failing_channel_without_blocking_the_others(world: World) -> None:
    os.environ["ALERT_RETRY_BASE_SECONDS"] = "0.05"  # the worker backs off in milliseconds
    try:
        with capture_server(status=503) as broken, capture_server() as healthy, celery_worker():
            _alert(
                world,
                [
                    _channel(world, "slack", broken.url),
                    _channel(world, "webhook", healthy.url, "k"),
                ],
            )

            def settled() -> bool:
                return (
                    not Delivery.objects.for_tenant(world.tenant).filter(status="pending").exists()
                )

            wait_until(settled, timeout=60)
    finally:
        del os.environ["ALERT_RETRY_BASE_SECONDS"]
    deliveries = {
        d.channel.kind: d
        for d in Delivery.objects.for_tenant(world.tenant).select_related("channel")
    }
    assert (deliveries["webhook"].status, deliveries["webhook"].attempts) == ("sent", 1)
    assert (deliveries["slack"].status, deliveries["slack"].attempts) == ("failed", MAX_ATTEMPTS)
    assert len(broken.requests) == MAX_ATTEMPTS and len(healthy.requests) == 1
