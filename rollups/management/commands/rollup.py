from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from rollups import services
from tenants.commands import tenants_from_option
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Roll up pending events; with --since, re-price events from that day with today's "
        "prices and rebuild the rollups from raw events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")
        parser.add_argument("--since", help="YYYY-MM-DD: recompute from the start of this UTC day")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenants = tenants_from_option(opts["tenant"])
        since = self._since(opts["since"]) if opts["since"] else None
        for tenant in tenants:
            pending = services.roll_up_all_pending(tenant.pk)
            self.stdout.write(f"{tenant.slug}: rolled up {pending} pending events")
            if since is not None:
                self._recompute(tenant, since)

    def _recompute(self, tenant: Tenant, since: date) -> None:
        started = time.monotonic()
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)

        def progress(done: int) -> None:
            self.stdout.write(
                f"{tenant.slug}: re-priced {done} events ({time.monotonic() - started:.1f}s)"
            )

        repriced = services.reprice_events(tenant, start, progress)
        events = services.recompute(tenant, since)
        self.stdout.write(
            f"{tenant.slug}: re-priced {repriced} events and rebuilt rollups from {since} "
            f"over {events} events in {time.monotonic() - started:.1f}s"
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
