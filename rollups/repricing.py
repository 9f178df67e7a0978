"""Re-pricing stored events on purpose: a preview of what it would change, then the change.

Both read the tenant's retained raw events from the start of a UTC day and price each one
with today's prices, through the resolver ingest prices with (`pricing.resolver`). The
preview sums the stored and the new costs per month (in the tenant's time zone, as invoices
count months) and team. The apply writes the events whose cost or source changes, and only
those, then rebuilds the rollups from that day with the one merge every rollup run makes
(`services.recompute`). So the preview is exactly what the apply changes, and applying twice
changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models.functions import TruncMonth

from core.teams import NO_TEAM
from ingest.models import UsageEvent
from pricing.resolver import TenantPricer, pricer_for
from rollups import services
from tenants.models import Tenant

ZERO = Decimal(0)
# Event costs are stored with 12 decimals (numeric(28, 12), which rounds half away from
# zero): a new cost is compared with the stored one as it would be stored.
STORED = Decimal("1e-12")
CHUNK = 5000
Progress = Callable[[int, int], None]  # events scanned, events in all


@dataclass
class Cell:
    """One month and team: calls, what they cost as stored and with today's prices."""

    month: date
    team_pk: int
    events: int = 0
    changed: int = 0
    before: Decimal = ZERO
    after: Decimal = ZERO

    @property
    def difference(self) -> Decimal:
        return self.after - self.before


@dataclass
class Preview:
    tenant_id: int
    since: date
    pricing_version: int  # the prices it was computed with
    cells: dict[tuple[date, int], Cell] = field(default_factory=dict)

    @property
    def rows(self) -> list[Cell]:
        return [self.cells[key] for key in sorted(self.cells)]

    @property
    def events(self) -> int:
        return sum(c.events for c in self.cells.values())

    @property
    def changed(self) -> int:
        return sum(c.changed for c in self.cells.values())

    @property
    def before(self) -> Decimal:
        return sum((c.before for c in self.cells.values()), ZERO)

    @property
    def after(self) -> Decimal:
        return sum((c.after for c in self.cells.values()), ZERO)

    @property
    def difference(self) -> Decimal:
        return self.after - self.before


def day_start(since: date) -> datetime:
    return datetime(since.year, since.month, since.day, tzinfo=UTC)


Change = tuple[int, Decimal, str]  # event id, new cost, new source


def _scan(
    tenant: Tenant, since: date, preview: Preview, progress: Progress | None
) -> Iterator[list[Change]]:
    """Price every event from `since` and add it to `preview`; yields the changes per chunk."""
    pricer: TenantPricer = pricer_for(tenant)
    events = UsageEvent.objects.for_tenant(tenant).filter(timestamp__gte=day_start(since))
    total = events.count() if progress else 0
    rows = events.annotate(
        month=TruncMonth("timestamp", tzinfo=ZoneInfo(tenant.timezone))
    ).values_list(
        "pk", "month", "team_id", "provider", "model", "timestamp", "input_tokens",
        "output_tokens", "cache_read_tokens", "cache_write_tokens", "client_cost_usd",
        "cost_usd", "cost_source",
    )  # fmt: skip
    price, cells, changes, seen = pricer.price_counts, preview.cells, list[Change](), 0
    for pk, month, team, provider, model, at, i, o, r, w, client, old, source in rows.iterator(
        chunk_size=CHUNK
    ):
        cost, new_source = price(provider, model, at, i, o, r, w, client)
        cost = cost.quantize(STORED, ROUND_HALF_UP)
        key = (month.date(), NO_TEAM if team is None else team)
        cell = cells.get(key) or cells.setdefault(key, Cell(*key))
        cell.events += 1
        cell.before += old
        cell.after += cost
        if cost != old or new_source != source:
            cell.changed += 1
            changes.append((pk, cost, new_source))
        seen += 1
        if seen % CHUNK == 0:
            yield changes
            changes = []
            if progress:
                progress(seen, total)
    yield changes
    if progress:
        progress(seen, total)


def preview(tenant: Tenant, since: date, progress: Progress | None = None) -> Preview:
    """What re-pricing from `since` would change, per month and team; writes nothing."""
    tenant.refresh_from_db(fields=["pricing_version"])
    result = Preview(tenant.pk, since, tenant.pricing_version)
    for _ in _scan(tenant, since, result, progress):
        pass
    return result


UPDATE_SQL = (
    f"UPDATE {UsageEvent._meta.db_table} AS e SET cost_usd = v.cost, cost_source = v.source "  # noqa: S608
    "FROM (SELECT unnest(%(ids)s::bigint[]) AS id, unnest(%(costs)s::numeric[]) AS cost, "
    "unnest(%(sources)s::text[]) AS source) AS v "
    "WHERE e.id = v.id AND e.tenant_id = %(tenant)s"
)


def _write(tenant_id: int, changes: list[Change]) -> None:
    if not changes:
        return
    ids, costs, sources = zip(*changes, strict=True)
    params: dict[str, Any] = {
        "ids": list(ids),
        "costs": list(costs),
        "sources": list(sources),
        "tenant": tenant_id,
    }
    with connection.cursor() as cursor:
        cursor.execute(UPDATE_SQL, params)


def apply(tenant: Tenant, since: date, progress: Progress | None = None) -> Preview:
    """Re-price the events from `since` that today's prices change, then rebuild the rollups
    from that day; returns what changed (the preview of this very run).

    Each chunk of changes commits on its own, so a run that dies part way leaves some events
    re-priced and the rollups not yet rebuilt: running it again finds the rest and rebuilds
    (the rollups never count an event twice, they are rebuilt from the events)."""
    tenant.refresh_from_db(fields=["pricing_version"])
    result = Preview(tenant.pk, since, tenant.pricing_version)
    for changes in _scan(tenant, since, result, progress):
        _write(tenant.pk, changes)
    services.recompute(tenant, since)
    return result
