from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest.models import PendingBatch
from rollups import health, services
from tenants.commands import tenants_from_option
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Batches the rollups refused too often: list them, retry one (back to pending, then "
        "roll up its tenant now) or drop one (delete it with its events)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")
        parser.add_argument("action", choices=["list", "retry", "drop"])
        parser.add_argument("batch_id", nargs="?", help="the batch id (retry and drop)")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = tenants_from_option(opts["tenant"])[0] if opts["tenant"] else None
        if opts["action"] == "list":
            if opts["batch_id"] is not None:
                raise CommandError("list takes no batch id")
            self._list(tenant)
            return
        batch_id = self._batch_id(opts["batch_id"], opts["action"])
        try:
            if opts["action"] == "retry":
                self._retry(batch_id, tenant.pk if tenant else None)
            else:
                self._drop(batch_id, tenant.pk if tenant else None)
        except services.NotQuarantined:
            where = f" of tenant {tenant.slug!r}" if tenant else ""
            raise CommandError(
                f"no quarantined batch {batch_id}{where} (see: manage.py rollup_quarantine list)"
            ) from None

    def _batch_id(self, raw: str | None, action: str) -> int:
        if raw is None:
            raise CommandError(f"{action} needs a batch id (see: manage.py rollup_quarantine list)")
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
            raise CommandError(f"a batch id is a positive whole number, got {raw!r}")
        return int(raw)

    def _list(self, tenant: Tenant | None) -> None:
        batches = health.quarantined_batches(tenant)
        if not batches:
            self.stdout.write("no quarantined batches")
            return
        for b in batches:
            self.stdout.write(
                f"batch {b.pk}  tenant {b.tenant}  {b.events} events  "
                f"stored {b.created_at:%Y-%m-%d %H:%M:%S}  quarantined "
                f"{b.quarantined_at:%Y-%m-%d %H:%M:%S} after {b.failures} failures\n"
                f"    {b.last_error}"
            )
        self.stdout.write(f"{len(batches)} quarantined batch(es)")

    def _retry(self, batch_id: int, tenant_id: int | None) -> None:
        batch = services.retry_quarantined(batch_id, tenant_id)
        self.stdout.write(f"batch {batch_id} is pending again; rolling up its tenant now")
        events = services.roll_up_isolated(batch.tenant_id)
        left = PendingBatch.objects.for_tenant(batch.tenant_id).filter(pk=batch_id).first()
        if left is None:
            self.stdout.write(f"batch {batch_id} rolled up ({events} events merged in this run)")
        elif left.failures:
            self.stdout.write(
                f"batch {batch_id} refused again ({left.failures} of {services.MAX_ATTEMPTS} "
                f"attempts before quarantine): {left.last_error}"
            )
        else:
            self.stdout.write(f"batch {batch_id} is pending; the next rollup run merges it")

    def _drop(self, batch_id: int, tenant_id: int | None) -> None:
        deleted = services.drop_quarantined(batch_id, tenant_id)
        self.stdout.write(f"batch {batch_id} dropped with its {deleted} events")
