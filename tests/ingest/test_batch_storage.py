"""Large batches are stored by COPY, small ones by one INSERT: both must store the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.test import Client

from ingest.models import PendingBatch, UsageEvent
from tests.conftest import World, event, post_json, requires_postgres

pytestmark = requires_postgres
URL = "/api/v1/events"
SKIPPED = {"id", "event_id", "batch_id", "received_at"}
KOLKATA = ZoneInfo("Asia/Kolkata")


def _varied(n: int, prefix: str) -> dict[str, Any]:
    at = datetime(2025, 6, 1, 12, 34, 56, tzinfo=UTC) + timedelta(minutes=37 * n)
    return event(
        f"{prefix}-{n}",
        timestamp=at.astimezone(UTC if n % 2 else KOLKATA).isoformat(),  # +05:30 or Z
        model=["gpt-4o", "gpt-4o-mini", "secret-llm"][n % 3],
        cache_read_tokens=n * 7,
        feature=f"f{n % 4}",
        user_id=f"u{n}",
        tags={"n": str(n)} if n % 5 else None,
        cost_usd=str(Decimal("0.000000000123") * n) if n % 6 == 5 else None,
        latency_ms=n * 10.5,
        team="search" if n % 2 else None,
    )


def _rows(world: World, prefix: str) -> list[dict[str, Any]]:
    rows = UsageEvent.objects.for_tenant(world.tenant).filter(event_id__startswith=f"evt-{prefix}-")
    return [
        {k: v for k, v in row.items() if k not in SKIPPED}
        for row in sorted(rows.values(), key=lambda r: int(r["event_id"].rsplit("-", 1)[1]))
    ]


def test_it_stores_a_large_batch_exactly_as_it_stores_single_events(world: World) -> None:
    batch = post_json(Client(), URL, {"events": [_varied(n, "b") for n in range(30)]}, world.ingest)
    singles = [post_json(Client(), URL, _varied(n, "s"), world.ingest) for n in range(30)]
    assert batch.json() == {"accepted": 30, "duplicates": 0, "rejected": []}
    assert all(s.json()["accepted"] == 1 for s in singles)
    stored = _rows(world, "b")
    assert len(stored) == 30 and stored == _rows(world, "s")
    assert stored[1]["tags"] == {"n": "1"} and stored[0]["tags"] == {}
    assert stored[2]["cost_source"] == "unpriced" and stored[2]["cost_usd"] == Decimal(0)
    assert stored[5]["cost_source"] == "client"
    assert stored[5]["cost_usd"] == Decimal("0.000000000615")
    assert stored[0]["hour"] == datetime(2025, 6, 1, 12, tzinfo=UTC)


def test_it_counts_duplicates_in_a_large_batch_once(world: World) -> None:
    client = Client()
    post_json(client, URL, {"events": [event(i) for i in range(5)]}, world.ingest)
    batch = [event(i) for i in range(20)] + [event(7)]  # 5 stored before, one sent twice
    response = post_json(client, URL, {"events": batch}, world.ingest)
    assert response.json() == {"accepted": 15, "duplicates": 6, "rejected": []}
    ids = UsageEvent.objects.for_tenant(world.tenant).values_list("event_id", flat=True)
    assert sorted(ids) == sorted(f"evt-{i}" for i in range(20))
    # One pending batch per request that stored anything, whichever way it was stored.
    assert PendingBatch.objects.for_tenant(world.tenant).count() == 2
