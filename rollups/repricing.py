"""Re-pricing stored events on purpose: a preview of what it would change, then the change.

Both read the tenant's retained raw events from the start of a UTC day and price each one
with today's prices, through the resolver ingest prices with (`pricing.resolver`). The
preview sums the stored and the new costs per month (in the tenant's time zone, as invoices
count months) and team. The apply writes the events whose cost or source changes, and only
those, then rebuilds the rollups from the first day that changed with the one merge every
rollup run makes (`services.recompute`). So the preview is exactly what the apply changes, and applying twice
changes nothing the second time.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from ingest.models import UsageEvent
from pricing.resolver import pricer_for
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
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)  # (month index, team_pk)
    first_change: date | None = None  # the UTC day of the earliest event that changes

    @property
    def rows(self) -> list[Cell]:
        return [self.cells[key] for key in sorted(self.cells)]

    def cell(self, month: date, team_pk: int) -> Cell:
        return next(c for c in self.cells.values() if (c.month, c.team_pk) == (month, team_pk))

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


class Months:
    """Which month (in a time zone) an epoch second falls in, by bisecting the months' starts
    from `since` on: ~10x cheaper per event than converting each event's time."""

    def __init__(self, zone: str, since: date) -> None:
        # From the month before: the zone's month of `since`'s first UTC hours may be that one.
        before = date(since.year, since.month, 1) - timedelta(days=1)
        tz, self.firsts = ZoneInfo(zone), [before.replace(day=1)]
        last = datetime.now(UTC).date() + timedelta(days=62)  # events may be minutes ahead
        while self.firsts[-1] < last:
            month = self.firsts[-1]
            self.firsts.append(date(month.year + month.month // 12, month.month % 12 + 1, 1))
        self.starts = [datetime.combine(m, time(), tz).timestamp() for m in self.firsts]

    def index(self, epoch: float) -> int:
        return bisect.bisect_right(self.starts, epoch) - 1

    def first_day(self, index: int) -> date:
        return self.firsts[index]


# What pricing an event needs, in time order (the index on tenant and timestamp): each
# model's price period, which the pricer caches, then changes only at its bounds. The time
# comes as epoch seconds (float8 holds microseconds exactly at today's epochs) and the month
# is found from it in Python: parsing timestamps as text, and EXTRACT's numeric months, were
# most of the scan's time.
SCAN_SQL = (
    "SELECT id, date_part('epoch', timestamp), COALESCE(team_id, 0), provider, model, "  # noqa: S608
    "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, client_cost_usd, "
    f"cost_usd, cost_source FROM {UsageEvent._meta.db_table} "
    "WHERE tenant_id = %(tenant)s AND timestamp >= %(start)s ORDER BY timestamp"
)
COUNT_SQL = (
    f"SELECT COUNT(*) FROM {UsageEvent._meta.db_table} "  # noqa: S608
    "WHERE tenant_id = %(tenant)s AND timestamp >= %(start)s"
)


def _scan(
    tenant: Tenant, since: date, preview: Preview, progress: Progress | None
) -> Iterator[list[Change]]:
    """Price every event from `since` and add it to `preview`; yields the changes per chunk."""
    params: dict[str, Any] = {"tenant": tenant.pk, "start": day_start(since)}
    total = _count(params) if progress else 0
    price, cells, seen = pricer_for(tenant).price_counts, preview.cells, 0
    from_epoch, months = datetime.fromtimestamp, Months(tenant.timezone, since)
    with connection.chunked_cursor() as cursor:
        cursor.execute(SCAN_SQL, params)
        while rows := cursor.fetchmany(CHUNK):
            changes: list[Change] = []
            for pk, epoch, team, provider, model, i, o, r, w, client, old, source in rows:
                cost, new_source = price(
                    provider, model, from_epoch(epoch, UTC), i, o, r, w, client
                )
                cost = cost.quantize(STORED, ROUND_HALF_UP)
                month = months.index(epoch)
                cell = cells.get((month, team)) or cells.setdefault(
                    (month, team), Cell(months.first_day(month), team)
                )
                cell.events += 1
                cell.before += old
                cell.after += cost
                if cost != old or new_source != source:
                    cell.changed += 1
                    changes.append((pk, cost, new_source))
                    if preview.first_change is None:  # in time order: the earliest
                        preview.first_change = from_epoch(epoch, UTC).date()
            seen += len(rows)
            yield changes
            if progress:
                progress(seen, total)


def _count(params: dict[str, Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(COUNT_SQL, params)
        row = cursor.fetchone()
        return int(row[0]) if row else 0


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


def apply(
    tenant: Tenant, since: date, progress: Progress | None = None, rebuild_all: bool = False
) -> Preview:
    """Re-price the events from `since` that today's prices change, then rebuild the rollups
    from the first day that changed; returns what changed (the preview of this very run).

    One transaction: a run that dies part way leaves nothing changed, so when no event
    changes there is nothing to rebuild either, and a second apply costs one scan. Ingest and
    rollup runs go on meanwhile (they only wait for the rebuild, on the tenant's lock).
    `rebuild_all`: rebuild the rollups from `since` whatever changed (`rollup --since`,
    which also repairs them)."""
    with transaction.atomic():
        tenant.refresh_from_db(fields=["pricing_version"])
        result = Preview(tenant.pk, since, tenant.pricing_version)
        for changes in _scan(tenant, since, result, progress):
            _write(tenant.pk, changes)
        if rebuild_all or result.first_change is not None:
            services.recompute(tenant, since if rebuild_all else result.first_change or since)
    return result


class RepriceRefused(Exception):
    """A re-price the rules refuse (another one runs, a day out of range); says why, for people."""


Work = Callable[[], Preview]
Recorder = Callable[[Tenant, date, Work], Preview]
# Apps that keep a record of re-prices wrap `rollup --since`'s apply in theirs (prices records
# a run, as its page does); they are wired in by `pipeline`, so this app imports none of them.
RECORDERS: list[Recorder] = []


def recorded(tenant: Tenant, since: date, work: Work) -> Preview:
    """Run `work` (a re-price from `since`) inside every recorder's record of it."""
    for recorder in RECORDERS:
        work = functools.partial(recorder, tenant, since, work)
    return work()
