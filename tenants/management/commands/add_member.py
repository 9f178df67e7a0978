from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

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
        if opts["password"]:
            # The same rules as the password pages (AUTH_PASSWORD_VALIDATORS).
            try:
                validate_password(opts["password"], get_user_model()(username=opts["username"]))
            except ValidationError as weak:
                raise CommandError(" ".join(weak.messages)) from None
        membership = add_member(
            tenant, opts["username"], opts["role"], opts["password"], actor="manage.py"
        )
        self.stdout.write(f"{opts['username']} is {membership.role} of {tenant.slug}")
