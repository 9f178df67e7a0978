from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pricing.families import BUILTIN_RULES
from pricing.models import ModelFamilyRule
from pricing.services import FamilyRuleError, delete_family_rule, set_family_rule
from tenants.management.commands._base import get_tenant


class Command(BaseCommand):
    help = (
        "List a tenant's model family rules, or set or delete one. MATCH is a glob (* ? [..]) "
        "or a prefix over the catalog's model id (gpt-4o-2024-08-06 is gpt-4o); a tenant's "
        "rules win over the built-in ones, the longest pattern first. Pages and the usage API "
        "use the new families at once: families are worked out when read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("--set", nargs=2, metavar=("MATCH", "FAMILY"))
        parser.add_argument("--delete", metavar="MATCH")
        parser.add_argument("--builtin", action="store_true", help="also list the built-in rules")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        if opts["set"]:
            try:
                rule = set_family_rule(tenant, *opts["set"], actor="manage.py")
            except FamilyRuleError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{tenant.slug}: {rule.match} -> {rule.family}")
        elif opts["delete"]:
            if not delete_family_rule(tenant, opts["delete"], actor="manage.py"):
                raise CommandError(f"tenant {tenant.slug!r} has no rule for {opts['delete']!r}")
            self.stdout.write(f"{tenant.slug}: deleted the rule for {opts['delete']}")
        for rule in ModelFamilyRule.objects.for_tenant(tenant):
            self.stdout.write(f"  {rule.match} -> {rule.family}")
        if opts["builtin"]:
            for match, family in BUILTIN_RULES:
                self.stdout.write(f"  (built-in) {match} -> {family}")
