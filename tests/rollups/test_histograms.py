from __future__ import annotations

from ingest.services import ingest_events
from rollups.models import HourlyRollup
from rollups.services import roll_up_all_pending
from tests.conftest import World, event


def test_it_buckets_latency_and_tokens_per_request(world: World) -> None:
    calls = [
        event(1, latency_ms=10, input_tokens=60, output_tokens=40),  # 100 tokens: first bucket
        event(2, latency_ms=10.5, input_tokens=60, output_tokens=41),
        event(3, latency_ms=2500, input_tokens=9000, output_tokens=1000),
        event(4, latency_ms=120_000, input_tokens=20_000, output_tokens=0),
        event(5, input_tokens=0, output_tokens=0),  # no latency reported
    ]
    ingest_events(world.ingest.key, calls)
    roll_up_all_pending(world.tenant.pk)
    row = HourlyRollup.objects.for_tenant(world.tenant).get()
    latency = [getattr(row, f"lat_{i}") for i in range(12)]
    assert latency == [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert (row.latency_count, row.latency_sum_ms) == (4, 10 + 10.5 + 2500 + 120_000)
    tokens = [getattr(row, f"tok_{i}") for i in range(8)]
    assert tokens == [2, 1, 0, 0, 0, 0, 1, 1]
