from __future__ import annotations

from collections.abc import Collection

from django.db import models

from tenants.scoping import TenantOwned


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack incoming webhook"
    PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
    WEBHOOK = "webhook", "Signed JSON webhook"


class AlertChannel(TenantOwned):
    """Where a tenant's alerts go. `target` is an email list, a webhook URL or an Events URL."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    target = models.CharField(max_length=500)
    # PagerDuty routing key, or the webhook's HMAC-SHA256 signing secret.
    secret = models.CharField(max_length=200, blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        ordering = ["name"]
        # `test_channel TENANT NAME` finds a channel by its name; the settings form says so
        # first, this holds when two saves race.
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="channel_name_once_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        """None here: Django's check reads the fail-closed default manager. The settings form
        checks a name within its tenant (`ChannelForm.clean_name`), the database holds it."""


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


class Alert(TenantOwned):
    """Something worth telling people once: a budget threshold crossed, an anomaly opened."""

    source = models.CharField(max_length=32)  # "budget", "anomaly", "test"
    title = models.CharField(max_length=300)
    message = models.TextField()
    severity = models.CharField(max_length=16, choices=Severity.choices)
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="alert_tenant_recent")]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Delivery(TenantOwned):
    """One alert to one channel, retried by Celery until it is sent or given up."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="delivery_once_per_channel")
        ]
