from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug

from tenants.labels import is_reserved_slug
from tenants.management.commands._base import get_tenant
from tenants.models import Team
from tenants.services import create_team


class Command(BaseCommand):
    help = "Create a team in a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--cost-center", default="")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        try:
            validate_slug(opts["slug"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if is_reserved_slug(opts["slug"]):
            raise CommandError(
                f"{opts['slug']!r} is reserved: it labels the spend of a deleted team"
            )
        if Team.objects.for_tenant(tenant).filter(slug=opts["slug"]).exists():
            raise CommandError(f"team {opts['slug']!r} already exists in {tenant.slug!r}")
        team = create_team(tenant, opts["slug"], opts["name"], opts["cost_center"])
        self.stdout.write(f"created team {team.slug} in {tenant.slug}")
