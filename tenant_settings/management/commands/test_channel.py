from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from alerts.models import AlertChannel, DeliveryStatus
from alerts.services import send_test_now
from tenants.management.commands._base import get_tenant


class Command(BaseCommand):
    help = "Send a test alert to a tenant's channel now and say whether it arrived."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("name", help="the channel's name")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        try:
            channel = AlertChannel.objects.for_tenant(tenant).get(name=opts["name"])
        except AlertChannel.DoesNotExist:
            raise CommandError(
                f"channel {opts['name']!r} does not exist in {tenant.slug}"
            ) from None
        except AlertChannel.MultipleObjectsReturned:
            raise CommandError(f"several channels are named {opts['name']!r}") from None
        self.stdout.write(f"sending a test alert to {channel.name!r} ({channel.kind})...")
        delivery = send_test_now(channel)
        if delivery.status != DeliveryStatus.SENT:
            raise CommandError(f"not delivered to {channel.name!r}: {delivery.last_error}")
        self.stdout.write(f"sent to {channel.name!r}")
