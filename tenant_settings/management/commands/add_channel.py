from collections.abc import Iterable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from alerts.models import AlertChannel, ChannelKind
from alerts.services import ChannelNameTaken, create_channel
from tenant_settings.forms import ChannelForm
from tenants.management.commands._base import get_tenant


class Command(BaseCommand):
    help = (
        "Add an alert channel to a tenant, with the settings page's checks: http(s) channels "
        "reach public internet addresses only (or those in ALERT_EGRESS_ALLOW)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("name")
        parser.add_argument("--kind", required=True, choices=[k.value for k in ChannelKind])
        parser.add_argument("--target", required=True, help="email addresses or an http(s) URL")
        parser.add_argument("--secret", default="", help="PagerDuty routing key / webhook secret")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        data = {k: opts[k] for k in ("name", "kind", "target", "secret")}
        # The page's form, so the command cannot accept what the page refuses.
        form = ChannelForm(data, instance=AlertChannel(tenant=tenant))
        if not form.is_valid():
            raise CommandError(
                "; ".join(_named(field, errors) for field, errors in form.errors.items())
            )
        try:
            channel = create_channel(form.save(commit=False), actor="manage.py")
        except ChannelNameTaken as exc:
            raise CommandError(_named("name", [exc])) from None
        self.stdout.write(f"added {channel.kind} channel {channel.name!r} to {tenant.slug}")


def _named(field: str, errors: Iterable[Any]) -> str:
    """An error named by its option (--target), as the page names it by its field."""
    words = " ".join(str(e) for e in errors)
    return f"--{field}: {words}" if field != "__all__" else words
