from __future__ import annotations

from typing import Any, cast

from django import forms

from alerts.models import AlertChannel
from budgets.models import Budget
from rollups.models import NO_TAG_LABEL
from rollups.tags import chosen
from tenants.models import Team, Tenant

# Per scope, the field naming what it counts (the tenant scope counts everything).
SCOPE_FIELDS: dict[str, str] = {
    Budget.Scope.TEAM: "team",
    Budget.Scope.FEATURE: "feature",
    Budget.Scope.ENDPOINT: "endpoint",
    Budget.Scope.TAG: "tag_value",
}
BLANKS: dict[str, Any] = {
    "team": None, "feature": "", "endpoint": "", "tag_key": "", "tag_value": ""
}  # fmt: skip


class BudgetForm(forms.ModelForm):
    # Declared here so Django never builds them from the default (tenant-scoped) managers;
    # __init__ narrows them to this tenant.
    team = forms.ModelChoiceField(queryset=Team.unscoped_all_tenants.none(), required=False)
    channels = forms.ModelMultipleChoiceField(
        queryset=AlertChannel.unscoped_all_tenants.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    tag_key = forms.ChoiceField(
        choices=[], required=False, help_text="One of the tag keys chosen as tag dimensions."
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
            "endpoint",
            "tag_key",
            "tag_value",
            "period",
            "amount_usd",
            "thresholds",
            "forecast_alert",
            "channels",
        ]
        labels = {"amount_usd": "Amount (USD)", "forecast_alert": "Alert when projected to exceed"}
        help_texts = {"tag_value": f"The tag's value; {NO_TAG_LABEL} for calls without the tag."}

    def __init__(self, tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        # Only this tenant's teams and channels can be chosen.
        team = cast(forms.ModelChoiceField, self.fields["team"])
        team.queryset = Team.objects.for_tenant(tenant)
        channels = cast(forms.ModelMultipleChoiceField, self.fields["channels"])
        channels.queryset = AlertChannel.objects.for_tenant(tenant)
        keys = [d.key for d in chosen(tenant)]
        if self.instance.tag_key and self.instance.tag_key not in keys:
            keys.append(self.instance.tag_key)  # shown, so the form says why it is refused
        cast(forms.ChoiceField, self.fields["tag_key"]).choices = [("", "---------")] + [
            (key, key) for key in keys
        ]
        if self.instance.scope == Budget.Scope.TAG and self.instance.tag_value == "":
            self.initial["tag_value"] = NO_TAG_LABEL
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
        if scope == Budget.Scope.ENDPOINT and not data.get("endpoint"):
            self.add_error("endpoint", "Name the endpoint this budget is for.")
        if scope == Budget.Scope.TAG:
            self._clean_tag(data)
        kept = {SCOPE_FIELDS.get(scope or ""), "tag_key" if scope == Budget.Scope.TAG else None}
        data.update({name: blank for name, blank in BLANKS.items() if name not in kept})
        return data

    def _clean_tag(self, data: dict[str, Any]) -> None:
        key = data.get("tag_key")
        if key not in {d.key for d in chosen(self.tenant)}:
            self.add_error("tag_key", "Choose one of the tag keys chosen as tag dimensions.")
        value = data.get("tag_value")
        if not value and "tag_value" not in self.errors:
            self.add_error("tag_value", f"Name the tag value (or {NO_TAG_LABEL}).")
        elif value == NO_TAG_LABEL:
            data["tag_value"] = ""

    def save(self, commit: bool = True) -> Budget:
        self.instance.tenant = self.tenant
        return super().save(commit)
