"""Tag dimensions: which tag keys a tenant rolls usage up by, and the re-roll when they change.

Choosing keys (`set_tag_dimensions`) saves them, drops the rows of keys no longer chosen, and
asks the worker to re-roll the new keys from the retained raw events (`reroll`). From the
moment the choice commits, every merge adds its events to the new keys' rows too; the re-roll
then rebuilds each day from scratch under the tenant's rollup lock (emptying the day's rows,
then adding its settled events), so events merged in between are counted once, and events of
batches still pending are left to their own merge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from audit.models import Action
from audit.services import Actor, record
from ingest.models import UsageEvent
from rollups import services, tag_sql
from rollups.models import MAX_TAG_DIMENSIONS, TAG_KEY_LENGTH, TagDimension
from tenants.models import Tenant

Progress = Callable[[date, int], None]


class BadTagKeys(ValueError):
    """The keys cannot be chosen; the message says why, for a person to read."""


def clean_keys(keys: list[str]) -> list[str]:
    """The keys as they will be stored, or `BadTagKeys`.

    Any key an event's tags may hold (1 to 128 characters), except those the usage API could
    not name: a comma separates `group_by` entries, and blanks around a key would be lost.
    """
    cleaned = list(dict.fromkeys(keys))
    if len(cleaned) > MAX_TAG_DIMENSIONS:
        raise BadTagKeys(f"at most {MAX_TAG_DIMENSIONS} tag keys, not {len(cleaned)}")
    for key in cleaned:
        if not key or key != key.strip():
            raise BadTagKeys(f"tag key {key!r}: must not be empty or start or end with a blank")
        if len(key) > TAG_KEY_LENGTH:
            raise BadTagKeys(f"tag key {key[:20]!r}...: at most {TAG_KEY_LENGTH} characters")
        if "," in key or any(not c.isprintable() for c in key):
            raise BadTagKeys(f"tag key {key!r}: no commas or control characters")
    return cleaned


def chosen(tenant: Tenant | int) -> list[TagDimension]:
    return list(TagDimension.objects.for_tenant(tenant).order_by("position", "key"))


def oldest_event_day(tenant_id: int) -> date | None:
    oldest = UsageEvent.objects.for_tenant(tenant_id).aggregate(first=Min("hour"))["first"]
    return None if oldest is None else oldest.astimezone(UTC).date()


def set_tag_dimensions(tenant: Tenant, keys: list[str], actor: Actor = None) -> list[str]:
    """Choose the tenant's tag keys (in order); returns the newly chosen ones, which the
    caller re-rolls (`reroll`, in the worker or inline). Raises `BadTagKeys`."""
    keys = clean_keys(keys)
    with transaction.atomic():
        services.lock_tenant(tenant.pk)
        before = {d.key: d for d in chosen(tenant)}
        removed = [k for k in before if k not in keys]
        TagDimension.objects.for_tenant(tenant).filter(key__in=removed).delete()
        tag_sql.delete_rows(tenant.pk, removed, datetime.min.replace(tzinfo=UTC))
        history_from = oldest_event_day(tenant.pk) or timezone.now().date()
        for position, key in enumerate(keys):
            if key in before:
                before[key].position = position
                before[key].save(update_fields=["position"])
            else:
                TagDimension.objects.for_tenant(tenant).create(
                    tenant=tenant, key=key, position=position,
                    history_from=history_from, chosen_at=timezone.now(),
                )  # fmt: skip
        added = [k for k in keys if k not in before]
        if added or removed or list(before) != keys:
            details = {"keys": keys, "added": added, "removed": removed}
            record(tenant, actor, Action.TAG_DIMENSIONS_SET, ",".join(keys), details)
    return added


def reroll(tenant_id: int, keys: list[str], progress: Progress | None = None) -> int:
    """Rebuild the tag rollups of `keys` (those still chosen) from the retained raw events,
    a UTC day per transaction; returns the events added. `progress(day, events)` per day."""
    keys = [k for k in keys if k in {d.key for d in chosen(tenant_id)}]
    first = oldest_event_day(tenant_id)
    if not keys or first is None:
        return 0
    last = max(timezone.now().date(), _newest_event_day(tenant_id))
    total, day = 0, first
    while day <= last:
        total += _reroll_day(tenant_id, keys, day, progress)
        day += timedelta(days=1)
    return total


def _newest_event_day(tenant_id: int) -> date:
    rows = UsageEvent.objects.for_tenant(tenant_id).order_by("-hour").values_list("hour")
    return rows[0][0].astimezone(UTC).date()


def _reroll_day(tenant_id: int, keys: list[str], day: date, progress: Progress | None) -> int:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    with transaction.atomic():
        services.lock_tenant(tenant_id)
        tag_sql.delete_rows(tenant_id, keys, start, end)
        count = tag_sql.add_settled(tenant_id, keys, start, end)
    if progress is not None:
        progress(day, count)
    return count
