"""Forms of the settings page: API keys and alert channels."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from alerts.models import AlertChannel, ChannelKind
from tenants.models import Scope, Team, Tenant


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=200)
    scope = forms.ChoiceField(choices=Scope.choices)
    team = forms.ModelChoiceField(
        queryset=Team.unscoped_all_tenants.none(), required=False, empty_label="(no team)"
    )

    def __init__(self, tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["team"]).queryset = Team.objects.for_tenant(tenant)


class ChannelForm(forms.ModelForm):
    class Meta:
        model = AlertChannel
        fields = ["name", "kind", "target", "secret"]
        labels = {"target": "Address or URL", "secret": "Routing key / signing secret"}
        help_texts = {
            "target": "Email: comma-separated addresses. Slack: the incoming-webhook URL. "
            "PagerDuty: https://events.pagerduty.com/v2/enqueue. Webhook: your URL.",
            "secret": "PagerDuty: the integration's routing key. Webhook: the HMAC-SHA256 secret.",
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, target = data.get("kind"), data.get("target", "")
        if kind in (
            ChannelKind.SLACK,
            ChannelKind.PAGERDUTY,
            ChannelKind.WEBHOOK,
        ) and not target.startswith(("http://", "https://")):
            self.add_error("target", "Use an http(s) URL for this kind of channel.")
        if kind in (ChannelKind.PAGERDUTY, ChannelKind.WEBHOOK) and not data.get("secret"):
            self.add_error("secret", "This kind of channel needs a routing key or secret.")
        if kind == ChannelKind.EMAIL and "@" not in target:
            self.add_error("target", "Give at least one email address.")
        return data
