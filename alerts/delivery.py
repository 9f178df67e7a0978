"""One attempt to deliver an alert to a channel; the task in `alerts.tasks` retries it."""

from __future__ import annotations

from alerts.models import Delivery, DeliveryStatus
from alerts.senders import DeliveryError, send

MAX_ATTEMPTS = 5


def attempt_delivery(tenant_id: int, delivery_id: int, final: bool) -> str:
    """Try once; the delivery's status after it. A failure on the last attempt, or a refused
    address (retrying cannot help), marks the delivery failed; otherwise it stays pending."""
    delivery = (
        Delivery.objects.for_tenant(tenant_id)
        .select_related("alert__tenant", "channel")
        .get(pk=delivery_id)
    )
    if delivery.status == DeliveryStatus.SENT:
        return delivery.status  # a retried task after a success must not send twice
    delivery.attempts += 1
    try:
        send(delivery.alert, delivery.channel)
    except DeliveryError as exc:
        delivery.last_error = str(exc)[:2000]
        given_up = final or exc.refused
        delivery.status = DeliveryStatus.FAILED if given_up else DeliveryStatus.PENDING
    else:
        delivery.status, delivery.last_error = DeliveryStatus.SENT, ""
    delivery.save(update_fields=["attempts", "last_error", "status", "updated_at"])
    return delivery.status
