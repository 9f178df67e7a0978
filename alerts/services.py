"""Alert writes: record an alert once and fan it out to its channels (sent by `alerts.tasks`)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any, TypedDict

from django.db import IntegrityError, transaction

from alerts.delivery import attempt_delivery
from alerts.models import Alert, AlertChannel, Delivery
from alerts.tasks import deliver
from audit.models import Action
from audit.services import Actor, record
from tenants.models import Tenant

TEST_MESSAGE = "This is a test from Costboard. If you can read it, alerts reach this channel."


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


class _TestAlert(TypedDict):
    source: str
    title: str
    message: str
    severity: str


def _test_alert(channel: AlertChannel) -> _TestAlert:
    """What a test alert says, whether the worker or `manage.py test_channel` sends it."""
    title = f"Test alert for {channel.name}"
    return _TestAlert(source="test", title=title, message=TEST_MESSAGE, severity="info")


def send_test(channel: AlertChannel) -> Alert:
    """The settings page's "send test" action: a real alert through the real delivery path."""
    return notify(channel.tenant, [channel], **_test_alert(channel))


def send_test_now(channel: AlertChannel) -> Delivery:
    """`manage.py test_channel`: one test alert delivered in this process, once, so the command
    can say at once whether it arrived (the same senders and checks as the worker)."""
    alert = Alert.objects.create(tenant=channel.tenant, **_test_alert(channel))
    delivery = Delivery.objects.create(tenant=channel.tenant, alert=alert, channel=channel)
    attempt_delivery(channel.tenant_id, delivery.pk, final=True)
    delivery.refresh_from_db()
    return delivery


class ChannelNameTaken(ValueError):
    """Another channel of the tenant got this name since the form checked it."""


def create_channel(channel: AlertChannel, *, actor: Actor = None) -> AlertChannel:
    """Store a validated, unsaved channel. The log keeps its kind, never its target: a Slack
    or webhook URL is itself a secret. ChannelNameTaken when a save of the same name won."""
    try:
        with transaction.atomic():
            channel.save()
            details = {"kind": channel.kind}
            record(channel.tenant, actor, Action.CHANNEL_CREATED, channel.name, details)
    except IntegrityError as exc:
        channel.pk = None
        raise ChannelNameTaken(f"There is already a channel named {channel.name!r}.") from exc
    return channel


@transaction.atomic
def delete_channel(channel: AlertChannel, *, actor: Actor = None) -> None:
    details = {"kind": channel.kind}
    channel.delete()
    record(channel.tenant, actor, Action.CHANNEL_DELETED, channel.name, details)
