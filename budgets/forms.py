from __future__ import annotations

from typing import Any, cast

from django import forms

from alerts.models import AlertChannel
from budgets.models import Budget
from tenants.models import Team, Tenant


class BudgetForm(forms.ModelForm):
    # Declared here so Django never builds them from the default (tenant-scoped) managers;
    # __init__ narrows them to this tenant.
    team = forms.ModelChoiceField(queryset=Team.unscoped_all_tenants.none(), required=False)
    channels = forms.ModelMultipleChoiceField(
        queryset=AlertChannel.unscoped_all_tenants.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    thresholds = forms.CharField(
        initial="50, 75, 90, 100", help_text="Percent of the amount, comma-separated."
    )

    class Meta:
        model = Budget
        fields = [
            "name",
            "scope",
            "team",
            "feature",
            "period",
            "amount_usd",
            "thresholds",
            "forecast_alert",
            "channels",
        ]
        labels = {"amount_usd": "Amount (USD)", "forecast_alert": "Alert when projected to exceed"}

    def __init__(self, tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        # Only this tenant's teams and channels can be chosen.
        team = cast(forms.ModelChoiceField, self.fields["team"])
        team.queryset = Team.objects.for_tenant(tenant)
        channels = cast(forms.ModelMultipleChoiceField, self.fields["channels"])
        channels.queryset = AlertChannel.objects.for_tenant(tenant)
        if self.instance.pk:
            self.initial["thresholds"] = ", ".join(str(t) for t in self.instance.thresholds)

    def clean_thresholds(self) -> list[int]:
        raw = self.cleaned_data["thresholds"]
        try:
            values = sorted({int(v) for v in raw.replace(" ", "").split(",") if v})
        except ValueError:
            raise forms.ValidationError("Use whole percentages, e.g. 50, 75, 90, 100.") from None
        if not values or any(not 1 <= v <= 1000 for v in values):
            raise forms.ValidationError("Each threshold must be between 1 and 1000 percent.")
        return values

    def clean_amount_usd(self) -> Any:
        amount = self.cleaned_data["amount_usd"]
        if amount is None or amount <= 0:
            raise forms.ValidationError("The amount must be more than zero.")
        return amount

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = data.get("scope")
        if scope == Budget.Scope.TEAM and not data.get("team"):
            self.add_error("team", "Choose the team this budget is for.")
        if scope == Budget.Scope.FEATURE and not data.get("feature"):
            self.add_error("feature", "Name the feature this budget is for.")
        if scope != Budget.Scope.TEAM:
            data["team"] = None
        if scope != Budget.Scope.FEATURE:
            data["feature"] = ""
        return data

    def save(self, commit: bool = True) -> Budget:
        self.instance.tenant = self.tenant
        return super().save(commit)
