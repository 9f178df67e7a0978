"""How an alert reaches each kind of channel. Each sender raises DeliveryError on failure."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from alerts.models import Alert, AlertChannel, ChannelKind, Severity

TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "X-Costboard-Signature"
TIMESTAMP_HEADER = "X-Costboard-Timestamp"


class DeliveryError(Exception):
    pass


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    request = urllib.request.Request(  # noqa: S310 - admins configure http(s) URLs only
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} from {url}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"could not reach {url}: {exc}") from exc


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
        raise DeliveryError(f"email failed: {exc}") from exc
