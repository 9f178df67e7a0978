"""The opt-in catalog updater: genai-prices' UpdatePrices against a prices file served from
127.0.0.1, new models priced at ingest, stored events left as they were."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import httpx2
import pytest
from genai_prices import data_snapshot

from ingest.models import UsageEvent
from ingest.services import ingest_events
from pricing.catalog import catalog_price
from pricing.catalog_updates import catalog_data_date, catalog_updater, start_catalog_updates
from tests.conftest import World, event

# The shape of genai-prices' published data.json: a list of providers and their models.
PRICES = [
    {
        "id": "acmeai",
        "name": "Acme AI",
        "api_pattern": "https://api\\.acme\\.ai",
        "models": [
            {
                "id": "brand-new-1",
                "match": {"equals": "brand-new-1"},
                "prices": {"input_mtok": 2, "output_mtok": 8},
            }
        ],
    }
]


@pytest.fixture
def prices_server() -> Iterator[dict[str, Any]]:
    """A real HTTP server on 127.0.0.1 serving the prices file (or failing, on demand)."""
    state: dict[str, Any] = {"status": 200, "requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["requests"] += 1
            body = json.dumps(PRICES).encode()
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/data.json"
    yield state
    server.shutdown()
    server.server_close()
    data_snapshot.set_custom_snapshot(None)  # back to the bundled data for later tests


def test_it_keeps_the_bundled_catalog_by_default() -> None:
    assert catalog_updater() is None and start_catalog_updates() is None
    data = catalog_data_date()
    assert not data.updated and data.fetched_at is None and data.providers > 20
    assert data.label.startswith("bundled with genai-prices ")


def test_it_prices_new_models_after_an_update_and_leaves_stored_events(
    world: World, settings: Any, prices_server: dict[str, Any]
) -> None:
    settings.CATALOG_AUTO_UPDATE = True
    settings.CATALOG_UPDATE_URL = prices_server["url"]
    now = datetime.now(UTC)
    early = event("early", provider="acmeai", model="brand-new-1", timestamp=now.isoformat())
    ingest_events(world.ingest.key, [early])
    assert catalog_price("acmeai", "brand-new-1", now) is None
    updater = start_catalog_updates(wait=10)
    assert updater is not None
    try:
        assert prices_server["requests"] == 1
        data = catalog_data_date()
        assert data.updated and data.providers == 1
        assert data.fetched_at is not None and now - data.fetched_at < timedelta(minutes=1)
        later = event("later", provider="acmeai", model="brand-new-1", timestamp=now.isoformat())
        ingest_events(world.ingest.key, [later])
    finally:
        updater.stop()
    costs = dict(UsageEvent.objects.for_tenant(world.tenant).values_list("event_id", "cost_usd"))
    # 1000 input tokens at $2/M and 500 output at $8/M; the event stored before stays unpriced.
    assert costs == {"evt-later": Decimal("0.006"), "evt-early": Decimal(0)}


def test_it_keeps_the_data_it_has_when_a_fetch_fails(
    settings: Any, prices_server: dict[str, Any]
) -> None:
    settings.CATALOG_AUTO_UPDATE = True
    settings.CATALOG_UPDATE_URL = prices_server["url"]
    prices_server["status"] = 503
    updater = start_catalog_updates()
    assert updater is not None
    try:
        with pytest.raises(httpx2.HTTPStatusError):
            updater.wait(10)
    finally:
        updater.stop()
    assert not catalog_data_date().updated
    assert catalog_price("openai", "gpt-4o-mini", datetime.now(UTC)) is not None
