"""Two beat processes (as on two nodes) against one Redis: one sends, the other stands by and
takes over when the first dies."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache

from costboard.beat import LOCK_KEY
from tests.scale.nodes import QUEUE, beat_log, broker, queued, sent_by, start_beat
from tests.worker import kill, wait_until

pytestmark = [pytest.mark.slow]
METRICS_TASK = "metrics.tasks.refresh_metrics"  # every 5 s: the beat entry seen soonest


def _metrics_origins(at_least: int) -> list[str] | None:
    origins = [h["origin"] for h in queued() if h["task"] == METRICS_TASK]
    return origins if len(origins) >= at_least else None


@pytest.fixture
def empty_queue() -> Iterator[None]:
    broker().delete(QUEUE)
    cache.delete(LOCK_KEY)
    yield
    broker().delete(QUEUE)  # no worker ran: nothing of this test may reach the next
    cache.delete(LOCK_KEY)


@pytest.mark.usefixtures("empty_queue")
def test_it_sends_the_schedule_from_one_beat_of_two_and_fails_over(tmp_path: Path) -> None:
    first = start_beat(tmp_path, "first", lock_seconds=10)
    second = None
    try:
        wait_until(lambda: str(cache.get(LOCK_KEY) or "").endswith(f":{first.pid}"), timeout=60)
        second = start_beat(tmp_path, "second", lock_seconds=10)
        wait_until(lambda: "standing by" in beat_log(tmp_path, "second"), timeout=60)
        broker().delete(QUEUE)
        origins = wait_until(lambda: _metrics_origins(2), timeout=30)
        assert all(o.startswith(sent_by(first.pid)) for o in origins), origins

        kill(first, signal.SIGKILL)  # a node lost: no clean hand-over
        wait_until(lambda: "sending the schedule" in beat_log(tmp_path, "second"), timeout=30)
        broker().delete(QUEUE)
        origins = wait_until(lambda: _metrics_origins(2), timeout=30)
        assert all(o.startswith(sent_by(second.pid)) for o in origins), origins
    finally:
        kill(first)
        if second:
            kill(second)
