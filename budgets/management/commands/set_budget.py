from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.models import Budget
from budgets.services import set_budget
from tenants.management.commands._base import get_team, get_tenant


class Command(BaseCommand):
    help = "Create or update a budget for a tenant, a team or a feature."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("--amount", required=True, help="USD, e.g. 1500 or 1500.50")
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--team")
        scope.add_argument("--feature")
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
