from __future__ import annotations

from typing import Any, cast

from django import forms

from alerts.models import AlertChannel
from anomalies.models import DetectionSettings
from tenants.models import Tenant


class ThresholdsForm(forms.ModelForm):
    # Declared here so Django never builds them from the tenant-scoped default manager.
    warning_channels = forms.ModelMultipleChoiceField(
        queryset=AlertChannel.unscoped_all_tenants.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    critical_channels = forms.ModelMultipleChoiceField(
        queryset=AlertChannel.unscoped_all_tenants.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = DetectionSettings
        fields = [
            "volume_warning", "volume_critical", "cost_warning", "cost_critical", "cache_warning",
            "cache_critical", "drift_critical_ratio", "min_z", "min_requests", "warning_channels",
            "critical_channels",
        ]  # fmt: skip
        labels = {
            "volume_warning": "Volume spike, warning (x baseline)",
            "volume_critical": "Volume spike, critical (x baseline)",
            "cost_warning": "Cost per call, warning (+ share of average, 0.5 = +50%)",
            "cost_critical": "Cost per call, critical (1.0 = +100%)",
            "cache_warning": "Cache hit rate, warning below",
            "cache_critical": "Cache hit rate, critical below",
            "drift_critical_ratio": "Model drift is critical when the new model costs (x usual)",
            "min_z": "Also require a z-score of at least",
            "min_requests": "Ignore hours with fewer calls than",
        }

    def __init__(self, tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("warning_channels", "critical_channels"):
            field = cast(forms.ModelMultipleChoiceField, self.fields[name])
            field.queryset = AlertChannel.objects.for_tenant(tenant)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for low, high in (("volume_warning", "volume_critical"), ("cost_warning", "cost_critical")):
            if data.get(low) is not None and data.get(high) is not None and data[high] < data[low]:
                self.add_error(high, "The critical level must be at least the warning level.")
        if (
            data.get("cache_critical") is not None
            and data.get("cache_warning") is not None
            and data["cache_critical"] > data["cache_warning"]
        ):
            self.add_error("cache_critical", "Critical must be a lower hit rate than warning.")
        return data
