from __future__ import annotations

import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing import months, services
from billing.models import Invoice
from tenants.commands import tenants_from_option
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Generate (or regenerate) the draft invoices of a month, per team, for one tenant or "
        "all; finalized invoices are never changed. --finalize also finalizes the drafts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--month", required=True, help="YYYY-MM, in each tenant's time zone")
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")
        parser.add_argument(
            "--finalize", action="store_true", help="finalize the drafts (closed months only)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            month = months.parse_month(opts["month"])
        except months.BadMonth as exc:
            raise CommandError(f"--month: {exc}") from None
        tenants = tenants_from_option(opts["tenant"])
        now = timezone.now()
        self._check(tenants, month, opts["finalize"], now)
        started, total = time.monotonic(), 0
        for n, tenant in enumerate(tenants, 1):
            self.stdout.write(f"[{n}/{len(tenants)}] {tenant.slug} {months.label(month)} ...")
            total += self._generate(tenant, month, opts["finalize"], now)
        self.stdout.write(
            f"done: {len(tenants)} tenant(s), {total} invoice(s) for {months.label(month)} "
            f"in {time.monotonic() - started:.1f}s"
        )

    def _check(self, tenants: list[Tenant], month: date, finalize: bool, now: Any) -> None:
        """Refuse before writing anything: a month not started, or finalizing an open one."""
        for tenant in tenants:
            try:
                services.check_month(tenant, month, now, finalize)
            except services.BillingError as exc:
                raise CommandError(f"{tenant.slug}: {exc}") from None

    def _generate(self, tenant: Tenant, month: date, finalize: bool, now: Any) -> int:
        result = services.generate_month(
            tenant, month, finalize=finalize, user="manage.py", now=now, progress=self._progress
        )
        finalized = f", {len(result.finalized)} finalized now" if finalize else ""
        self.stdout.write(
            f"  {tenant.slug}: {len(result.invoices)} invoice(s), total ${result.total:,.2f} "
            f"({len(result.created)} new, {len(result.regenerated)} regenerated, "
            f"{len(result.kept)} finalized unchanged{finalized}, {result.removed} empty removed)"
        )
        if result.deferred:
            self.stdout.write(
                f"  {tenant.slug}: {len(result.deferred)} team(s) new to this closed month; "
                "their usage is billed as adjustments on their next invoice"
            )
        return len(result.invoices)

    def _progress(self, outcome: str, invoice: Invoice | None, team_pk: int) -> None:
        if invoice is None:
            self.stdout.write(f"    team #{team_pk}: {outcome}")
            return
        amount = f"${invoice.total_usd:,.2f}"
        self.stdout.write(
            f"    {invoice.team_slug:<24} {outcome:<12} {invoice.line_count:>6} lines {amount:>14}"
        )
