"""Two web nodes, two Celery workers and one beat on one PostgreSQL and one Redis: an ingest
storm with overlapping retries on both nodes and a worker killed mid-rollup still leave usage,
budgets, invoices and /metrics equal to the raw events, with every alert sent once."""

from __future__ import annotations

import random
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.db.models import Count, Sum

from alerts.models import Alert, AlertChannel
from billing import months
from billing.selectors import basis, month_lines
from budgets.models import BudgetAlert, BudgetStatus
from budgets.services import set_budget
from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from tests import worker
from tests.conftest import World, event
from tests.httpcapture import capture_server
from tests.metrics.helpers import parse, pick
from tests.rollups.helpers import assert_rollups_match_raw
from tests.scale.nodes import RollupGate, start_beat, worker_rolling_up
from tests.server import web_server
from tests.worker import kill, start_worker, wait_until

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True), pytest.mark.slow]
BACKLOG = 120  # batches of 20 stored before the workers start: a rollup long enough to kill
STORM = 30  # batches of 40 sent over HTTP, each to both nodes and once more shuffled
WORKERS = ("left", "right")


def _events(prefix: str, count: int, at: str) -> list[dict[str, Any]]:
    return [
        event(
            f"{prefix}-{i}", team="search", feature=f"f{i % 7}", user_id=f"u{i % 13}", timestamp=at
        )
        for i in range(count)
    ]


def _kill_mid_rollup(
    processes: dict[str, subprocess.Popen[bytes]], tenant_id: int, gate: RollupGate
) -> str:
    """SIGKILL the worker that is rolling up, while it holds the tenant's lock; its name."""
    try:
        wait_until(gate.waiting, timeout=120, every=0.05)
        gate.open()

        def rolling_up() -> str | None:
            return worker_rolling_up(tenant_id)

        victim = wait_until(rolling_up, timeout=30, every=0.005)
        kill(processes[victim], signal.SIGKILL)
        return victim
    finally:
        connection.close()  # this thread's own connection


def _post(base: str, token: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
    answer = httpx.post(
        f"{base}/api/v1/events",
        json={"events": batch},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


def _storm(bases: list[str], token: str, at: str) -> list[dict[str, Any]]:
    """Every batch to both nodes at once, then again in another order: a client retrying a
    request it saw time out, against whichever node the balancer picks."""
    sends: list[tuple[str, list[dict[str, Any]]]] = []
    for b in range(STORM):
        batch = _events(f"storm{b}", 40, at)
        shuffled = random.sample(batch, len(batch))
        sends += [(bases[0], batch), (bases[1], batch), (bases[b % 2], shuffled)]
    random.shuffle(sends)
    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(lambda s: _post(s[0], token, s[1]), sends))


def _settled(world: World, spend: Decimal) -> bool:
    status = BudgetStatus.objects.for_tenant(world.tenant).first()
    idle = not PendingBatch.objects.for_tenant(world.tenant).exists()
    return idle and status is not None and status.spend_usd == spend


def _fired(world: World) -> int:
    return BudgetAlert.objects.for_tenant(world.tenant).count()


def _metrics_cost(base: str) -> float:
    body = httpx.get(f"{base}/metrics", timeout=30).text
    return sum(pick(parse(body), "costboard_cost_usd_total", tenant="acme").values())


def test_it_counts_every_event_once_on_two_web_nodes_two_workers_and_one_beat(
    world: World, tmp_path: Path, loopback_receivers: None
) -> None:
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    for n in range(BACKLOG):
        ingest_events(world.ingest.key, _events(f"backlog{n}", 20, at))
    env = {
        "DATABASE_URL": worker.test_database_url(),
        "METRICS_TOKEN": "",
        "METRICS_PUBLIC": "1",  # the test's scrapes are about the figures, not about access
        "METRICS_CACHE_SECONDS": "0",
    }
    with capture_server() as hook, ThreadPoolExecutor(max_workers=1) as killer:
        channel = AlertChannel.objects.create(
            tenant=world.tenant, name="hook", kind="webhook", target=hook.url
        )
        budget, _ = set_budget(world.tenant, amount=Decimal("20"), team=world.team)
        budget.channels.add(channel)
        # The workers boot while the web servers do; the first to roll up the backlog (its
        # rollup was scheduled by its ingest) waits at the gate, then is killed mid-transaction.
        gate = RollupGate(world.tenant.pk)
        processes = {name: start_worker(name=name) for name in WORKERS}
        processes["beat"] = start_beat(tmp_path, "beat")
        try:
            victim = killer.submit(_kill_mid_rollup, processes, world.tenant.pk, gate)
            with web_server(env, workers=1) as a, web_server(env, workers=1) as b:
                assert victim.result(timeout=120) in WORKERS
                answers = _storm([a, b], world.ingest.token, at)
                events = UsageEvent.objects.for_tenant(world.tenant)
                raw = events.aggregate(n=Count("id"), cost=Sum("cost_usd"))
                wait_until(lambda: _settled(world, raw["cost"]), timeout=90, every=0.5)
                wait_until(lambda: len(hook.requests) >= _fired(world), timeout=30)
                metrics = [_metrics_cost(a), _metrics_cost(b)]
        finally:
            gate.open()  # a no-op once opened
            for proc in processes.values():
                kill(proc)
    # Nothing lost, nothing doubled: each storm event accepted once, by one node or the other.
    assert raw["n"] == BACKLOG * 20 + STORM * 40
    assert sum(x["accepted"] for x in answers) == STORM * 40
    assert sum(x["accepted"] + x["duplicates"] for x in answers) == 3 * STORM * 40
    assert_rollups_match_raw(world.tenant)
    month = months.current_month(world.tenant.timezone)
    lines = month_lines(world.tenant, month, basis(world.tenant, month))
    assert sum(line.cost_usd for team in lines.values() for line in team) == raw["cost"]
    assert sum(line.requests for team in lines.values() for line in team) == raw["n"]
    assert metrics == [float(raw["cost"])] * 2
    # Every threshold crossed ($30 of a $20 budget) fired once and was delivered once.
    fired = list(BudgetAlert.objects.for_tenant(world.tenant).values_list("threshold", flat=True))
    assert sorted(fired) == sorted(set(fired)) and 100 in fired
    assert Alert.objects.for_tenant(world.tenant).count() == len(fired) == len(hook.requests)
    assert not UsageEvent.objects.for_tenant(world.other_tenant).exists()
    assert not Alert.objects.for_tenant(world.other_tenant).exists()
