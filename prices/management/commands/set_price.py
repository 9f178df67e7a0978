from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prices.forms import PriceForm, errors_text
from pricing.services import set_price_override
from tenants.management.commands._base import get_tenant

# The form's fields as the command's options name them, for error messages.
FLAGS = {
    "effective_from": "--from",
    "input_per_mtok": "--input",
    "output_per_mtok": "--output",
    "cache_read_per_mtok": "--cache-read",
    "cache_write_per_mtok": "--cache-write",
}


class Command(BaseCommand):
    help = (
        "Set the tenant's own price for a provider and model from a date (USD per million "
        "tokens; an empty cache price bills cached tokens as input). Stored events keep their "
        "cost: preview a re-price with `rollup --tenant T --since DATE --dry-run`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("provider")
        parser.add_argument("model")
        parser.add_argument("--input", required=True, help="USD per million input tokens")
        parser.add_argument("--output", required=True, help="USD per million output tokens")
        parser.add_argument("--cache-read", help="USD per million cache-read tokens")
        parser.add_argument("--cache-write", help="USD per million cache-write tokens")
        parser.add_argument(
            "--from", dest="start", required=True, help="YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (UTC)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        form = PriceForm(
            {
                "provider": opts["provider"],
                "model": opts["model"],
                "effective_from": opts["start"],
                "input_per_mtok": opts["input"],
                "output_per_mtok": opts["output"],
                "cache_read_per_mtok": opts["cache_read"] or "",
                "cache_write_per_mtok": opts["cache_write"] or "",
            }
        )
        if not form.is_valid():
            raise CommandError(errors_text(form, FLAGS))
        override = set_price_override(tenant, **form.cleaned_data, actor="manage.py")
        since = override.effective_from.date().isoformat()
        self.stdout.write(
            f"{tenant.slug}: {override} input {override.input_per_mtok.normalize():f} output "
            f"{override.output_per_mtok.normalize():f} USD per million tokens. Stored events keep "
            f"their cost; preview a re-price with: manage.py rollup --tenant {tenant.slug} "
            f"--since {since} --dry-run"
        )
