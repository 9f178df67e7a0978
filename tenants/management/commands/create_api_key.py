from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenants.management.commands._base import get_team, get_tenant
from tenants.models import Scope
from tenants.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key; the key is printed alone on the last line and never shown again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("--team", default=None)
        parser.add_argument("--name", default="")
        parser.add_argument("--scope", default=Scope.INGEST.value, choices=[s.value for s in Scope])

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        team = get_team(tenant, opts["team"]) if opts["team"] else None
        key, plaintext = create_api_key(
            tenant, team=team, name=opts["name"], scope=opts["scope"], actor="manage.py"
        )
        self.stdout.write(f"created {key.scope} key {key.prefix} for {tenant.slug}")
        self.stdout.write(plaintext)
