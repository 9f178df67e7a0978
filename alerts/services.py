"""Alert writes: record an alert once, fan it out to channels, deliver with retries."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from django.db import transaction

from alerts.models import Alert, AlertChannel, Delivery, DeliveryStatus
from alerts.senders import DeliveryError, send
from tenants.models import Tenant

MAX_ATTEMPTS = 5


def notify(
    tenant: Tenant,
    channels: Iterable[AlertChannel],
    *,
    source: str,
    title: str,
    message: str,
    severity: str,
    details: dict[str, Any] | None = None,
) -> Alert:
    """Record the alert and queue one delivery per enabled channel, sent after commit."""
    from alerts.tasks import deliver

    alert = Alert.objects.create(
        tenant=tenant,
        source=source,
        title=title,
        message=message,
        severity=severity,
        details=details or {},
    )
    for channel in channels:
        if channel.enabled:
            delivery = Delivery.objects.create(tenant=tenant, alert=alert, channel=channel)
            transaction.on_commit(partial(deliver.delay, tenant.pk, delivery.pk))
    return alert


def attempt_delivery(tenant_id: int, delivery_id: int, final: bool) -> bool:
    """Try once; True when sent. On the last attempt a failure marks the delivery failed."""
    delivery = (
        Delivery.objects.for_tenant(tenant_id)
        .select_related("alert__tenant", "channel")
        .get(pk=delivery_id)
    )
    if delivery.status == DeliveryStatus.SENT:
        return True  # a retried task after a success must not send twice
    delivery.attempts += 1
    try:
        send(delivery.alert, delivery.channel)
    except DeliveryError as exc:
        delivery.last_error = str(exc)[:2000]
        delivery.status = DeliveryStatus.FAILED if final else DeliveryStatus.PENDING
        delivery.save(update_fields=["attempts", "last_error", "status", "updated_at"])
        return False
    delivery.status, delivery.last_error = DeliveryStatus.SENT, ""
    delivery.save(update_fields=["attempts", "last_error", "status", "updated_at"])
    return True


def send_test(channel: AlertChannel) -> Alert:
    """The settings page's "send test" action: a real alert through the real delivery path."""
    return notify(
        channel.tenant,
        [channel],
        source="test",
        title=f"Test alert for {channel.name}",
        message="This is a test from Costboard. If you can read it, alerts reach this channel.",
        severity="info",
    )
