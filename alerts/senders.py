"""How an alert reaches each kind of channel. Each sender raises DeliveryError on failure."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from alerts import egress
from alerts.models import Alert, AlertChannel, ChannelKind, Severity

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Costboard-Signature"
TIMESTAMP_HEADER = "X-Costboard-Timestamp"


class DeliveryError(Exception):
    """Why a delivery failed, in words shown on the settings page; `refused` when retrying
    cannot help (the address is not allowed)."""

    def __init__(self, words: str, *, refused: bool = False) -> None:
        super().__init__(words)
        self.refused = refused


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    try:
        status = egress.post(
            url,
            body,
            {"Content-Type": "application/json", **(headers or {})},
            settings.ALERT_DELIVERY_TIMEOUT_SECONDS,
        )
    except egress.EgressError as exc:
        raise DeliveryError(str(exc), refused=exc.refused) from exc
    if 300 <= status < 400:
        raise DeliveryError(f"the receiver answered with a redirect (HTTP {status}), not followed")
    if not 200 <= status < 300:
        raise DeliveryError(f"the receiver answered HTTP {status}")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The seed's `send_slack_alert` attachment, with the alert's details as fields."""
    critical = alert.severity in (Severity.CRITICAL, Severity.ERROR)
    fields = [
        {"title": "Severity", "value": alert.severity, "short": True},
        {
            "title": "Time",
            "value": alert.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "short": True,
        },
    ]
    fields += [{"title": k, "value": str(v), "short": True} for k, v in alert.details.items()]
    attachment = {
        "color": "danger" if critical else "warning",
        "title": f"LLM Cost Alert - {alert.severity.upper()}: {alert.title}",
        "text": alert.message,
        "fields": fields,
        "footer": "Costboard",
    }
    return {"text": alert.title, "attachments": [attachment]}


def pagerduty_payload(alert: Alert, routing_key: str) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        # One incident per alert: a retried delivery updates it instead of paging twice.
        "dedup_key": f"costboard-{alert.tenant_id}-{alert.pk}",
        "payload": {
            "summary": alert.title[:1024],
            "severity": alert.severity,
            "source": "costboard",
            "component": alert.source,
            "custom_details": {"message": alert.message, **alert.details},
        },
    }


def webhook_body(alert: Alert) -> bytes:
    body = {
        "id": alert.pk,
        "tenant": alert.tenant.slug,
        "source": alert.source,
        "title": alert.title,
        "message": alert.message,
        "severity": alert.severity,
        "details": alert.details,
        "created_at": alert.created_at.isoformat(),
    }
    return json.dumps(body, sort_keys=True).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 of "<timestamp>.<body>", so a captured request cannot be replayed later."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def send(alert: Alert, channel: AlertChannel) -> None:
    if channel.kind == ChannelKind.SLACK:
        _post(channel.target, json.dumps(slack_payload(alert)).encode())
    elif channel.kind == ChannelKind.PAGERDUTY:
        _post(channel.target, json.dumps(pagerduty_payload(alert, channel.secret)).encode())
    elif channel.kind == ChannelKind.WEBHOOK:
        body, timestamp = webhook_body(alert), str(int(time.time()))
        headers = {
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(channel.secret, timestamp, body),
        }
        _post(channel.target, body, headers)
    else:
        _send_email(alert, channel)


def _send_email(alert: Alert, channel: AlertChannel) -> None:
    recipients = [a.strip() for a in channel.target.split(",") if a.strip()]
    try:
        send_mail(
            f"[Costboard] {alert.title}", alert.message, settings.DEFAULT_FROM_EMAIL, recipients
        )
    except Exception as exc:  # SMTP errors come in many classes
        # The operator's mail server is configured by the operator: its errors go to the log.
        log.warning("alert email failed: %r", exc)
        raise DeliveryError(_email_words(exc)) from exc


def _email_words(exc: Exception) -> str:
    # smtplib's errors are OSErrors too: one the server answered is a refusal, not a
    # network failure.
    answered = isinstance(exc, smtplib.SMTPException) and not isinstance(
        exc, smtplib.SMTPServerDisconnected
    )
    if answered or not isinstance(exc, OSError):
        return "the mail server refused the message"
    return f"mail server: {egress.describe(exc)}"
