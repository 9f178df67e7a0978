"""Tenant overrides win over the catalog at the event's timestamp, never retroactively."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client

from ingest.models import UsageEvent
from pricing.catalog import TokenCounts, reference_cost
from pricing.services import set_price_override
from tests.conftest import World, event, post_json

pytestmark = pytest.mark.usefixtures("long_retention")  # events of fixed 2025 dates

JUNE = datetime(2025, 6, 1, tzinfo=UTC)
JULY = datetime(2025, 7, 1, tzinfo=UTC)


def _send(world: World, n: int, at: datetime, **fields: object) -> UsageEvent:
    post_json(
        Client(), "/api/v1/events", event(n, timestamp=at.isoformat(), **fields), world.ingest
    )
    return UsageEvent.objects.for_tenant(world.tenant).get(event_id=f"evt-{n}")


def test_it_applies_an_override_from_its_effective_date(world: World) -> None:
    set_price_override(
        world.tenant,
        provider="openai",
        model="gpt-4o",
        effective_from=JULY,
        input_per_mtok=Decimal("2"),
        output_per_mtok=Decimal("8"),
    )
    before = _send(world, 1, datetime(2025, 6, 30, 23, 59, tzinfo=UTC))
    after = _send(world, 2, datetime(2025, 7, 1, 0, 1, tzinfo=UTC))
    expected_catalog = reference_cost("openai", "gpt-4o", TokenCounts(1000, 500), before.timestamp)
    assert (before.cost_usd, before.cost_source) == (expected_catalog, "catalog")
    # 1000 x $2 + 500 x $8 per million tokens.
    assert (after.cost_usd, after.cost_source) == (Decimal("0.006"), "override")


def test_it_uses_the_newest_override_and_cache_prices(world: World) -> None:
    for start, price in ((JUNE, "4"), (JULY, "3")):
        set_price_override(
            world.tenant,
            provider="openai",
            model="gpt-4o",
            effective_from=start,
            input_per_mtok=Decimal(price),
            output_per_mtok=Decimal("10"),
            cache_read_per_mtok=Decimal("0.5"),
        )
    row = _send(world, 1, datetime(2025, 8, 1, tzinfo=UTC), cache_read_tokens=400)
    # 600 uncached x $3 + 400 cached x $0.50 + 500 output x $10, per million.
    assert row.cost_usd == Decimal("0.0070")


def test_it_never_reprices_stored_events_when_an_override_changes(world: World) -> None:
    row = _send(world, 1, JULY)
    set_price_override(
        world.tenant,
        provider="openai",
        model="gpt-4o",
        effective_from=JUNE,
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("1"),
    )
    row.refresh_from_db()
    assert row.cost_source == "catalog"
    assert _send(world, 2, JULY).cost_source == "override"


def test_it_keeps_overrides_to_their_tenant(world: World) -> None:
    set_price_override(
        world.other_tenant,
        provider="openai",
        model="gpt-4o",
        effective_from=JUNE,
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("1"),
    )
    assert _send(world, 1, JULY).cost_source == "catalog"


def test_it_prices_an_unknown_model_by_override_then_client_then_unpriced(world: World) -> None:
    assert _send(world, 1, JULY, model="in-house").cost_source == "unpriced"
    client_priced = _send(world, 2, JULY, model="in-house", cost_usd="0.25")
    assert (client_priced.cost_usd, client_priced.cost_source) == (Decimal("0.25"), "client")
    set_price_override(
        world.tenant,
        provider="openai",
        model="in-house",
        effective_from=JUNE,
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("2"),
    )
    overridden = _send(world, 3, JULY, model="In-House", cost_usd="0.25")
    assert (overridden.cost_usd, overridden.cost_source) == (Decimal("0.002"), "override")
