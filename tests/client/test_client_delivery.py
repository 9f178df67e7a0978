"""The Python client against real servers: lost answers, dead and silent servers, a full queue."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from typing import Any

import httpx
import pytest
from costboard_client import CostboardClient

from ingest.models import UsageEvent
from tests.client.servers import (
    DROP,
    LOSE_ANSWER,
    RATE_LIMITED,
    UNAUTHORIZED,
    UNAVAILABLE,
    Front,
    closed_port,
    serve,
    silent_server,
)
from tests.conftest import World
from tests.server import ROOT, web_server
from tests.worker import test_database_url as server_database_url

FAST: dict[str, Any] = {
    "backoff_base": 0.05,
    "backoff_max": 0.2,
    "flush_interval": 0.05,
    "flush_at_exit": False,
}


def record_calls(client: CostboardClient, n: int, **fields: Any) -> list[str | None]:
    return [
        client.record("openai", "gpt-4o-mini", 1000 + i, 100, feature="smart-reply", **fields)
        for i in range(n)
    ]


def warm_up(base: str, world: World) -> None:
    # A fresh server's first ingest loads the price catalog; keep that out of the timings.
    headers = {"Authorization": f"Bearer {world.ingest.token}"}
    body: dict[str, Any] = {"event_id": "warm-up", "provider": "openai", "model": "gpt-4o-mini"}
    body |= {"input_tokens": 1, "output_tokens": 1}
    httpx.post(f"{base}/api/v1/events", json=body, headers=headers, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_it_delivers_every_event_exactly_once_when_the_server_drops_its_first_answers(
    world: World,
) -> None:
    # The first batch is stored but its answer is lost, the next requests meet a 503, a
    # dropped connection and a 429: the client retries each, and the server counts once.
    script = [LOSE_ANSWER, UNAVAILABLE, DROP, RATE_LIMITED, LOSE_ANSWER]
    with web_server({"DATABASE_URL": server_database_url()}, workers=1) as base:
        warm_up(base, world)
        front = Front(upstream=base, script=script)
        with serve(front) as url:
            # A generous timeout: only the scripted failures should cause retries here.
            client = CostboardClient(world.ingest.token, url, batch_size=1000, timeout=60, **FAST)
            ids = record_calls(client, 2500)
            assert client.flush(timeout=60)
            stats = client.stats()
            client.close()

    stored = UsageEvent.objects.for_tenant(world.tenant).exclude(event_id="warm-up")
    assert None not in ids
    assert set(stored.values_list("event_id", flat=True)) == set(ids)
    assert stored.count() == len(ids)
    assert stats["sent"] == stats["recorded"] == 2500
    assert (stats["failed"], stats["dropped"], stats["queued"]) == (0, 0, 0)
    assert stats["retries"] == len(script)
    assert stats["duplicates"] >= 1000  # the batches whose answer was lost, sent again
    assert max(len(body["events"]) for body in front.bodies) <= 1000
    assert all(uuid.UUID(i).version == 4 for i in ids)  # ids made on the client


def test_it_returns_at_once_and_never_raises_when_the_server_is_dead() -> None:
    client = CostboardClient("cb_key_secret", closed_port(), max_retries=50, **FAST)
    started = time.monotonic()
    ids = record_calls(client, 200)
    recorded_in = time.monotonic() - started
    started = time.monotonic()
    flushed = client.flush(timeout=0.5)
    flushed_in = time.monotonic() - started
    assert client.close(timeout=0.2) is False

    assert all(ids) and recorded_in < 0.5
    assert flushed is False and flushed_in < 1.5
    stats = client.stats()
    assert stats["recorded"] == 200 and stats["sent"] == 0 and stats["retries"] > 0
    # Once closed, a record is dropped and counted, still without an exception.
    assert client.record("openai", "gpt-4o", 1, 1) is None
    assert client.stats()["dropped"] == 1


def test_it_gives_up_on_a_silent_server_within_its_timeouts() -> None:
    with silent_server() as url:
        client = CostboardClient("cb_key_secret", url, timeout=0.3, max_retries=1, **FAST)
        record_calls(client, 3)
        started = time.monotonic()
        assert client.flush(timeout=5) is True  # settled: given up after one retry
        assert time.monotonic() - started < 3
    stats = client.stats()
    assert (stats["failed"], stats["sent"], stats["retries"]) == (3, 0, 1)


def test_it_drops_and_counts_when_the_queue_is_full() -> None:
    with serve(Front()) as url:
        # A long linger keeps the events queued, so the bound is what the test sees.
        options = {**FAST, "flush_interval": 30.0}
        client = CostboardClient("cb_key_secret", url, max_queue_size=10, batch_size=100, **options)
        started = time.monotonic()
        ids = record_calls(client, 25)
        assert time.monotonic() - started < 0.5
        assert ids[:10] == [i for i in ids if i] and ids[10:] == [None] * 15
        assert client.stats()["dropped"] == 15
        assert client.flush(timeout=5)
    assert client.stats()["sent"] == 10


def test_it_does_not_retry_what_the_server_refuses() -> None:
    front = Front(script=[UNAUTHORIZED])
    with serve(front) as url:
        client = CostboardClient("cb_revoked_key", url, **FAST)
        record_calls(client, 5)
        assert client.flush(timeout=5)
    assert len(front.bodies) == 1
    assert client.stats()["failed"] == 5 and client.stats()["retries"] == 0


def test_it_sends_batches_of_at_most_a_thousand_events_with_the_key() -> None:
    front = Front()
    with serve(front) as url:
        client = CostboardClient("cb_abc_def", url, batch_size=5000, **FAST)
        record_calls(client, 2100, user_id="u-1", tags={"prompt": "v2"})
        assert client.flush(timeout=10)
    assert sum(len(b["events"]) for b in front.bodies) == 2100
    assert max(len(b["events"]) for b in front.bodies) == 1000
    assert front.headers[0]["Authorization"] == "Bearer cb_abc_def"
    first = front.events[0]
    assert first["input_tokens"] == 1000 and first["tags"] == {"prompt": "v2"}
    assert first["user_id"] == "u-1" and first["timestamp"].endswith("+00:00")


def test_it_swallows_bad_arguments_and_counts_them() -> None:
    client = CostboardClient("cb_abc_def", closed_port(), **FAST)
    assert client.record("openai", "gpt-4o", "lots", 1) is None  # type: ignore[arg-type]
    assert client.record_openai(object()) is None
    assert (
        client.record_openai({"model": "gpt-4o", "usage": {"prompt_tokens": 1}}, colour="red")
        is None
    )
    assert client.stats()["dropped"] == 3
    client.close(timeout=0)


def test_it_drops_everything_without_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COSTBOARD_API_KEY", raising=False)
    client = CostboardClient(base_url="not a url", **FAST)
    assert client.record("openai", "gpt-4o", 1, 1) is None
    assert client.flush(timeout=1) is True
    assert client.stats()["dropped"] == 1


def run_script(body: str, url: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import costboard_client
        costboard_client.init(api_key="cb_abc_def", base_url={url!r}, flush_interval=60,
                              backoff_base=0.05, exit_timeout=1.0)
        """
    ) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_it_flushes_what_is_queued_when_the_interpreter_exits() -> None:
    front = Front()
    with serve(front) as url:
        result = run_script(
            """
            for i in range(3):
                costboard_client.record("anthropic", "claude-sonnet-4-0", 10, 2, feature="cli")
            """,
            url,
        )
    assert result.returncode == 0, result.stderr
    assert [e["feature"] for e in front.events] == ["cli", "cli", "cli"]


def test_it_exits_promptly_when_the_server_is_dead_at_exit() -> None:
    started = time.monotonic()
    result = run_script('costboard_client.record("openai", "gpt-4o", 10, 2)\n', closed_port())
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10
    assert "Traceback" not in result.stderr


def test_it_starts_afresh_in_a_forked_child() -> None:
    # gunicorn --preload and multiprocessing fork a process that already has a client.
    front = Front()
    with serve(front) as url:
        client = CostboardClient("cb_abc_def", url, **{**FAST, "flush_interval": 30.0})
        client.record("openai", "gpt-4o", 1, 1, feature="parent")
        pid = os.fork()
        if pid == 0:  # the child: its own queue and thread, not the parent's event
            client.record("openai", "gpt-4o", 1, 1, feature="child")
            os._exit(0 if client.flush(timeout=10) and client.stats()["sent"] == 1 else 1)
        _, status = os.waitpid(pid, 0)
        assert client.flush(timeout=10)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(e["feature"] for e in front.events) == ["child", "parent"]
