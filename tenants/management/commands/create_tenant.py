from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug

from tenants.models import Tenant, validate_timezone
from tenants.services import create_tenant


class Command(BaseCommand):
    help = "Create a tenant (an organisation)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--timezone", default="UTC", help="for month boundaries, e.g. Europe/Berlin"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            validate_slug(opts["slug"])
            validate_timezone(opts["timezone"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if Tenant.objects.filter(slug=opts["slug"]).exists():
            raise CommandError(f"tenant {opts['slug']!r} already exists")
        tenant = create_tenant(opts["slug"], opts["name"], opts["timezone"])
        self.stdout.write(f"created tenant {tenant.slug}")
