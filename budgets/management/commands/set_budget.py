from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.models import ENDPOINT_LENGTH, Budget
from budgets.services import set_budget
from rollups.models import NO_TAG_LABEL, NO_TAG_VALUE, TAG_VALUE_LENGTH
from rollups.tags import chosen
from tenants.management.commands._base import get_team, get_tenant
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create or update a budget for a tenant, a team, a feature, an endpoint or a tag value."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("--amount", required=True, help="USD, e.g. 1500 or 1500.50")
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--team")
        scope.add_argument("--feature")
        scope.add_argument("--endpoint")
        scope.add_argument(
            "--tag", help=f"KEY=VALUE of a chosen tag key ({NO_TAG_LABEL}: untagged)"
        )
        parser.add_argument("--period", default="month", choices=[p.value for p in Budget.Period])
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        team = get_team(tenant, opts["team"]) if opts["team"] else None
        amount = _amount(opts["amount"])
        budget, created = set_budget(
            tenant,
            amount=amount,
            team=team,
            feature=opts["feature"] or "",
            endpoint=_endpoint(opts["endpoint"] or ""),
            tag=_tag(tenant, opts["tag"]) if opts["tag"] else None,
            period=opts["period"],
            name=opts["name"],
            actor="manage.py",
        )
        verb = "created" if created else "updated"
        self.stdout.write(
            f"{verb} budget {budget.name!r}: ${budget.amount_usd} per {budget.period}"
        )


def _amount(raw: str) -> Decimal:
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise CommandError(f"--amount must be a number of USD, got {raw!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise CommandError("--amount must be more than zero")
    return amount.quantize(Decimal("0.01"))


def _endpoint(raw: str) -> str:
    if len(raw) > ENDPOINT_LENGTH:
        raise CommandError(f"--endpoint: at most {ENDPOINT_LENGTH} characters")
    return raw


def _tag(tenant: Tenant, raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not value:
        raise CommandError(f"--tag must be KEY=VALUE, got {raw!r}")
    if key not in {d.key for d in chosen(tenant)}:
        raise CommandError(f"--tag: {key!r} is not one of the tenant's chosen tag keys")
    if len(value) > TAG_VALUE_LENGTH:
        raise CommandError(f"--tag: the value is over {TAG_VALUE_LENGTH} characters")
    return key, NO_TAG_VALUE if value == NO_TAG_LABEL else value
