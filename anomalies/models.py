from __future__ import annotations

from django.db import models
from django.db.models import Q

from alerts.models import AlertChannel
from tenants.scoping import TenantOwned


class Kind(models.TextChoices):
    VOLUME_SPIKE = "volume_spike", "Volume spike"
    COST_PER_REQUEST = "cost_per_request", "Cost per request"
    CACHE_HIT_RATE = "cache_hit_rate", "Cache efficiency drop"
    MODEL_DRIFT = "model_drift", "Model drift"


class Status(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


ACTIVE = (Status.OPEN, Status.ACKNOWLEDGED)


class DetectionSettings(TenantOwned):
    """A tenant's thresholds; the defaults are the seed's table (warning / critical)."""

    volume_warning = models.DecimalField(max_digits=6, decimal_places=2, default=1.5)  # x baseline
    volume_critical = models.DecimalField(max_digits=6, decimal_places=2, default=2.5)
    cost_warning = models.DecimalField(max_digits=6, decimal_places=2, default=0.5)  # +50 %
    cost_critical = models.DecimalField(max_digits=6, decimal_places=2, default=1.0)  # +100 %
    cache_warning = models.DecimalField(max_digits=4, decimal_places=2, default=0.60)  # hit rate
    cache_critical = models.DecimalField(max_digits=4, decimal_places=2, default=0.40)
    drift_critical_ratio = models.DecimalField(max_digits=6, decimal_places=2, default=1.5)
    min_z = models.DecimalField(max_digits=5, decimal_places=2, default=3)
    min_requests = models.PositiveIntegerField(default=30)  # per hour, so quiet features don't flap
    warning_channels = models.ManyToManyField(AlertChannel, blank=True, related_name="+")
    critical_channels = models.ManyToManyField(AlertChannel, blank=True, related_name="+")

    # One row per tenant, made on first use (services.detection_settings). No unique
    # constraint: Django's form validation would query it without a tenant scope.


class Anomaly(TenantOwned):
    kind = models.CharField(max_length=24, choices=Kind.choices)
    severity = models.CharField(max_length=16)  # warning | critical
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    feature = models.CharField(max_length=128)
    model = models.CharField(max_length=200, blank=True, default="")  # provider/model for drift
    opened_at = models.DateTimeField()
    first_hour = models.DateTimeField()
    last_hour = models.DateTimeField()  # the latest hour it was still observed
    observed = models.DecimalField(max_digits=28, decimal_places=12)
    baseline = models.DecimalField(max_digits=28, decimal_places=12)
    z_score = models.FloatField(null=True)
    summary = models.CharField(max_length=300)
    notified_severity = models.CharField(max_length=16, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(
        max_length=150, blank=True, default=""
    )  # "cleared" or a username
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")

    class Meta(TenantOwned.Meta):
        constraints = [
            # One active anomaly per kind, feature and model: it is opened once.
            models.UniqueConstraint(
                fields=["tenant", "kind", "feature", "model"],
                condition=Q(status__in=["open", "acknowledged"]),
                name="one_active_anomaly",
            )
        ]
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["tenant", "status", "-opened_at"], name="anomaly_tenant_status")
        ]
