from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenants.management.commands._base import get_tenant
from tenants.models import Role
from tenants.services import add_member


class Command(BaseCommand):
    help = "Give a person a role in a tenant, creating the user if new."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--password", default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        membership = add_member(tenant, opts["username"], opts["role"], opts["password"])
        self.stdout.write(f"{opts['username']} is {membership.role} of {tenant.slug}")
