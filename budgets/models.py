from __future__ import annotations

from django.db import models

from alerts.models import AlertChannel
from core.money import money_field
from rollups.models import TAG_KEY_LENGTH, TAG_VALUE_LENGTH
from tenants.scoping import TenantOwned

DEFAULT_THRESHOLDS = [50, 75, 90, 100]
FORECAST_THRESHOLD = 0  # the "projected to exceed" alert, stored as threshold 0
ENDPOINT_LENGTH = 128  # as the rollups' endpoint column


def default_thresholds() -> list[int]:
    return list(DEFAULT_THRESHOLDS)


class Budget(TenantOwned):
    class Scope(models.TextChoices):
        TENANT = "tenant", "Whole tenant"
        TEAM = "team", "Team"
        FEATURE = "feature", "Feature"
        ENDPOINT = "endpoint", "Endpoint"
        TAG = "tag", "Tag value"

    class Period(models.TextChoices):
        MONTH = "month", "Month"
        DAY = "day", "Day"

    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.TEAM)
    team = models.ForeignKey("tenants.Team", null=True, blank=True, on_delete=models.CASCADE)
    feature = models.CharField(max_length=128, blank=True, default="")
    endpoint = models.CharField(max_length=ENDPOINT_LENGTH, blank=True, default="")
    # A tag scope counts the tag rollups of `tag_key` (one of the tenant's chosen tag
    # dimensions) whose value is `tag_value`.
    tag_key = models.CharField(max_length=TAG_KEY_LENGTH, blank=True, default="")
    tag_value = models.CharField(max_length=TAG_VALUE_LENGTH, blank=True, default="")
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    amount_usd = models.DecimalField(max_digits=20, decimal_places=2)
    thresholds = models.JSONField(default=default_thresholds)  # percent of the amount
    forecast_alert = models.BooleanField(default=True)
    channels = models.ManyToManyField(AlertChannel, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BudgetStatus(TenantOwned):
    """The latest evaluation of a budget: what gateways read on every call, so it is one row."""

    budget = models.OneToOneField(Budget, on_delete=models.CASCADE, related_name="status")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    spend_usd = money_field()
    forecast_usd = money_field()
    exceed_on = models.DateField(null=True)  # first day the forecast crosses the amount
    evaluated_at = models.DateTimeField()
    # Why the budget is not evaluated (its tag key is no longer a tag dimension): spend and
    # forecast then say nothing and no threshold fires. Empty while it is evaluated.
    suspended = models.CharField(max_length=300, blank=True, default="")


class BudgetAlert(TenantOwned):
    """A threshold of a budget crossed in one period: the unique key makes it fire once."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateTimeField()
    threshold = models.PositiveIntegerField()  # percent; FORECAST_THRESHOLD for the forecast
    spend_usd = money_field()
    alert = models.ForeignKey("alerts.Alert", null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "threshold"], name="budget_alert_once_per_period"
            )
        ]
        ordering = ["-created_at"]
