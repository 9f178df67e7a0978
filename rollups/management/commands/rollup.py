from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.money import decimal_text
from rollups import repricing, services
from rollups.repricing import RepriceRefused
from tenants.commands import tenants_from_option
from tenants.labels import TeamLabels
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Roll up pending events; with --since, re-price events from that day with today's "
        "prices and rebuild the rollups from raw events; with --dry-run, print what the "
        "re-price would change per month and team, and change nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")
        parser.add_argument("--since", help="YYYY-MM-DD: recompute from the start of this UTC day")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="with --since: print the re-price preview (cost before, after, difference per "
            "month and team) and change nothing, not even pending rollups",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        tenants = tenants_from_option(opts["tenant"])
        since = self._since(opts["since"]) if opts["since"] else None
        if opts["dry_run"]:
            if since is None:
                raise CommandError("--dry-run previews a re-price: give --since YYYY-MM-DD")
            for tenant in tenants:
                self._preview(tenant, since)
            return
        for tenant in tenants:
            pending = services.roll_up_all_pending(tenant.pk)
            self.stdout.write(f"{tenant.slug}: rolled up {pending} pending events")
            if since is not None:
                self._recompute(tenant, since)

    def _recompute(self, tenant: Tenant, since: date) -> None:
        started = time.monotonic()

        progress = self._progress(tenant, "re-priced")
        try:
            result = repricing.recorded(
                tenant, since, lambda: repricing.apply(tenant, since, progress, rebuild_all=True)
            )
        except RepriceRefused as exc:
            raise CommandError(f"{tenant.slug}: {exc}") from None
        self.stdout.write(
            f"{tenant.slug}: re-priced {result.changed} events (of {result.events} from {since}) "
            f"and rebuilt the rollups: {decimal_text(result.before)} -> "
            f"{decimal_text(result.after)} USD in {time.monotonic() - started:.1f}s"
        )

    def _progress(self, tenant: Tenant, verb: str) -> repricing.Progress:
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            self.stderr.write(
                f"{tenant.slug}: {verb} {done} of {total} events "
                f"({time.monotonic() - started:.1f}s)"
            )

        return progress

    def _preview(self, tenant: Tenant, since: date) -> None:
        """The preview /prices/ shows, as text: nothing is written."""
        result = repricing.preview(tenant, since, self._progress(tenant, "priced"))
        labels = TeamLabels.of(tenant)
        self.stdout.write(
            f"{tenant.slug}: re-pricing from {since} (dry run, nothing changed); months in "
            f"{tenant.timezone}; USD"
        )
        self.stdout.write(
            "month    team                 events  changed  before  after  difference"
        )
        for cell in result.rows:
            self.stdout.write(
                f"{cell.month:%Y-%m}  {labels.label(cell.team_pk):<20} {cell.events:>7} "
                f"{cell.changed:>8}  {decimal_text(cell.before)}  {decimal_text(cell.after)}  "
                f"{decimal_text(cell.difference)}"
            )
        self.stdout.write(
            f"total    {result.events} events, {result.changed} would change: "
            f"{decimal_text(result.before)} -> {decimal_text(result.after)} "
            f"(difference {decimal_text(result.difference)})"
        )

    def _since(self, raw: str) -> date:
        try:
            since = date.fromisoformat(raw)
        except ValueError:
            raise CommandError(f"--since must be a date as YYYY-MM-DD, got {raw!r}") from None
        oldest = timezone.now().date() - timedelta(days=settings.RAW_EVENT_RETENTION_DAYS)
        if since < oldest:
            raise CommandError(
                f"--since {since} is before the raw-event retention ({oldest}); "
                "those days only exist as rollups and cannot be recomputed"
            )
        return since
