"""Large batches are stored by COPY, small ones by one INSERT: both must store the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client

from ingest.models import PendingBatch, UsageEvent
from pricing.catalog import TokenCounts, reference_cost
from pricing.services import set_price_override
from tests.conftest import World, event, post_json

pytestmark = pytest.mark.usefixtures("long_retention")  # events of fixed 2025 dates

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


TAGS = [
    {},
    {"région": "Zürich", "emoji 🎉": "✓ ünïcödé", "日本": "東京"},
    {'say "hi"': "back\\slash", "new\nline": "tab\there", "\u2028": "<&'>", "": ""},
    {"literal": "\\u0041 is not A", "slash/": "/\\/", "ctrl": "\x01\x1f\x7f"},
]


def test_it_stores_tags_exactly_whichever_way_it_stores_events(world: World) -> None:
    def tagged(n: int, prefix: str) -> dict[str, Any]:
        return event(f"{prefix}-{n}", tags=TAGS[n % len(TAGS)])

    batch = post_json(Client(), URL, {"events": [tagged(n, "b") for n in range(12)]}, world.ingest)
    assert batch.json()["accepted"] == 12  # COPY
    for n in range(4):
        assert post_json(Client(), URL, tagged(n, "s"), world.ingest).json()["accepted"] == 1
    events = UsageEvent.objects.for_tenant(world.tenant)
    for n in range(12):
        assert events.get(event_id=f"evt-b-{n}").tags == TAGS[n % len(TAGS)], n
    for n in range(4):
        assert events.get(event_id=f"evt-s-{n}").tags == TAGS[n], n
    # Also as the database sees them: {} is an empty object, the same text either way.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, tags::text, tags = '{{}}'::jsonb FROM {UsageEvent._meta.db_table} "
            "WHERE tenant_id = %s",
            [world.tenant.pk],
        )
        stored = {event_id: (text, empty) for event_id, text, empty in cursor.fetchall()}
    for n in range(4):
        assert stored[f"evt-b-{n}"] == stored[f"evt-s-{n}"] == stored[f"evt-b-{n + 4}"]
        assert stored[f"evt-b-{n}"][1] is (n == 0)


DEEPSEEK_PEAK_ENDS = datetime(2025, 6, 30, 16, 30, tzinfo=UTC)  # catalog: off-peak from here
OVERRIDE_STARTS = datetime(2025, 6, 30, 16, 45, tzinfo=UTC)
US = timedelta(microseconds=1)


def _expected(model: str, at: datetime, input_price: str) -> tuple[Decimal, str]:
    tokens = TokenCounts(1000, 500)
    if model == "gpt-4o" and at >= OVERRIDE_STARTS:
        return (1000 * Decimal(input_price) + 500 * Decimal(8)) / 1_000_000, "override"
    provider = "deepseek" if model == "deepseek-chat" else "openai"
    return reference_cost(provider, model, tokens, at), "catalog"


def test_it_prices_a_batch_across_price_periods_and_override_changes(world: World) -> None:
    """Events in time order, so a period found for one event would be reused past its end."""
    moments = sorted(
        at + delta
        for at in (DEEPSEEK_PEAK_ENDS, OVERRIDE_STARTS)
        for delta in (-timedelta(minutes=1), -US, timedelta(0), US, timedelta(minutes=1))
    )

    def send(prefix: str, input_price: str) -> None:
        raw = [
            event(f"{prefix}-{model}-{i}", model=model, provider=provider, timestamp=at.isoformat())
            for i, at in enumerate(moments)
            for provider, model in (("deepseek", "deepseek-chat"), ("openai", "gpt-4o"))
        ]
        assert post_json(Client(), URL, {"events": raw}, world.ingest).json()["accepted"] == 20
        rows = UsageEvent.objects.for_tenant(world.tenant).filter(
            event_id__startswith=f"evt-{prefix}-"
        )
        assert rows.count() == 20
        for row in rows:
            expected = _expected(row.model, row.timestamp, input_price)
            assert (row.cost_usd, row.cost_source) == expected, (row.model, row.timestamp)

    def override(input_price: str) -> None:
        set_price_override(
            world.tenant, provider="openai", model="gpt-4o", effective_from=OVERRIDE_STARTS,
            input_per_mtok=Decimal(input_price), output_per_mtok=Decimal(8),
        )  # fmt: skip

    override("2")
    send("first", "2")
    override("3")  # the same start, a new price: the cached pricer must not keep the old one
    send("changed", "3")
