"""`focus_exports DIR`: the demo tenant's FOCUS exports, as finance downloads them: last
month (finalized, plain usage) and this month (drafts with correction lines for late usage
of last month). deploy/focus_validate.sh runs the FinOps validator on them."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing import csv_export, months
from billing.models import InvoiceLine, LineType
from demo import late_usage
from demo.seeding import TENANT_SLUG
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        f"Write the demo tenant {TENANT_SLUG!r}'s FOCUS exports of last month and of this "
        "month (after adding late usage of last month, billed as corrections) into DIR."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help="where focus-<tenant>-<YYYY-MM>.csv are written")
        parser.add_argument(
            "--late-events", type=int, default=60, help="late calls dated last month (0: none)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["late_events"] < 0:
            raise CommandError("--late-events must be 0 or more")
        tenant = Tenant.objects.filter(slug=TENANT_SLUG).first()
        if tenant is None:
            raise CommandError(f"no tenant {TENANT_SLUG!r}: run `manage.py seed_demo` first")
        now, started = timezone.now(), time.monotonic()
        this_month = months.current_month(tenant.timezone, now)
        if opts["late_events"]:
            added = late_usage.add_late_usage(tenant, now, opts["late_events"])
            self.stdout.write(f"late usage: {added} new event(s) dated last month")
        directory = Path(opts["directory"])
        directory.mkdir(parents=True, exist_ok=True)
        for month in (months.previous_month(this_month), this_month):
            path = directory / f"focus-{tenant.slug}-{months.label(month)}.csv"
            with path.open("wb") as out:
                for chunk in csv_export.focus_csv(tenant, month):
                    out.write(chunk)
            self.stdout.write(f"{path}: {self._summary(tenant, month, path)}")
        self.stdout.write(f"done in {time.monotonic() - started:.1f}s")

    def _summary(self, tenant: Tenant, month: Any, path: Path) -> str:
        lines = InvoiceLine.objects.for_tenant(tenant).filter(invoice__month=month)
        corrections = lines.filter(
            line_type__in=(LineType.ADJUSTMENT, LineType.ALLOCATION_ADJUSTMENT)
        ).count()
        with path.open(newline="", encoding="utf-8") as written:
            rows = sum(1 for _ in csv.reader(written)) - 1  # the header
        # Lines split by a tag key's values are several rows (billing.csv_tags).
        return f"{rows} row(s) from {lines.count()} line(s), {corrections} correction line(s)"
