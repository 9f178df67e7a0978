"""Forms of the settings page: API keys and alert channels."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from alerts import egress
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

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        # `test_channel TENANT NAME` finds a channel by its name: one of each name per tenant.
        same = AlertChannel.objects.for_tenant(self.instance.tenant_id).filter(name=name)
        if same.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"There is already a channel named {name!r}.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, target = data.get("kind"), data.get("target", "")
        if kind in (ChannelKind.SLACK, ChannelKind.PAGERDUTY, ChannelKind.WEBHOOK):
            if not target.startswith(("http://", "https://")):
                self.add_error("target", "Use an http(s) URL for this kind of channel.")
            else:
                self._check_egress(target)
        if kind in (ChannelKind.PAGERDUTY, ChannelKind.WEBHOOK) and not data.get("secret"):
            self.add_error("secret", "This kind of channel needs a routing key or secret.")
        if kind == ChannelKind.EMAIL and "@" not in target:
            self.add_error("target", "Give at least one email address.")
        return data

    def _check_egress(self, target: str) -> None:
        """The delivery's own check, run at save so a refused address is told at once."""
        try:
            egress.check(target)
        except egress.EgressError as exc:
            self.add_error("target", _egress_words(exc))


def _egress_words(exc: egress.EgressError) -> str:
    if str(exc) == egress.NOT_ALLOWED:
        return (
            "Address not allowed: alerts go only to public internet addresses, not to "
            "loopback, private, link-local or reserved ones (the operator can allow an "
            "on-premises receiver with ALERT_EGRESS_ALLOW)."
        )
    return f"{str(exc)[:1].upper()}{str(exc)[1:]}."
