"""Batches the rollup merge cannot hold, made by writing events past ingest's validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import connection

from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from tests.conftest import KeyHolder, event

# input + output tokens of one such event: 2**63, past bigint, in the merge's own arithmetic
# (the tokens-per-request histogram adds them), however wide the rollup columns are.
HUGE_TOKENS = 2**62
# Alone a sum of latencies holds one; two overflow float8 ("value out of range: overflow").
HUGE_LATENCY_MS = 1e308


def batch(holder: KeyHolder, tag: str, n: int = 3, **fields: Any) -> int:
    """Ingest a valid batch of `n` events now; returns its batch id."""
    now = datetime.now(UTC).isoformat()
    events = [event(f"{tag}-{i}", feature=tag, timestamp=now, **fields) for i in range(n)]
    result = ingest_events(holder.key, events)
    assert result.accepted == n
    return newest_batch(holder)


def newest_batch(holder: KeyHolder) -> int:
    return (
        PendingBatch.objects.for_tenant(holder.key.tenant_id)
        .order_by("-pk")
        .values_list("pk", flat=True)[0]
    )


def poison(batch_id: int, **values: Any) -> None:
    """Give one event of the batch values that validation would refuse (e.g. overflowing)."""
    columns = ", ".join(f"{name} = %s" for name in values)
    first = UsageEvent.unscoped_all_tenants.filter(batch_id=batch_id).order_by("pk")[0]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {UsageEvent._meta.db_table} SET {columns} WHERE id = %s",
            [*values.values(), first.pk],
        )


def poisoned_batch(holder: KeyHolder, tag: str) -> int:
    """A batch whose merge the database always refuses (bigint out of range)."""
    batch_id = batch(holder, tag)
    poison(batch_id, input_tokens=HUGE_TOKENS, output_tokens=HUGE_TOKENS)
    return batch_id
