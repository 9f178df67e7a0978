"""Costboard through Debian's PgBouncer in transaction pooling mode (deploy/pgbouncer.sh), one
server connection shared by every client: what DATABASE_POOLED=1 is for."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from django.db import connection
from django.test import override_settings

from core import pooling
from ingest.models import UsageEvent
from tests.conftest import World, event
from tests.server import ROOT, free_port, web_server

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        shutil.which("pgbouncer") is None,
        reason="pgbouncer not installed (apt-get install pgbouncer; .ci/run installs it)",
    ),
]


@pytest.fixture
def pooler() -> Iterator[str]:
    """The test database's URL through a PgBouncer of one server connection."""
    port = free_port()
    env = {
        **os.environ,
        "PGBOUNCER_PORT": str(port),
        "PGBOUNCER_POOL_SIZE": "1",
        "COSTBOARD_VAR_DIR": str(ROOT / "var" / f"pooler-{port}"),
    }
    script = [str(ROOT / "deploy" / "pgbouncer.sh")]
    subprocess.run([*script, "start"], env=env, check=True, capture_output=True)
    s = connection.settings_dict
    try:
        yield f"postgres://{s['USER']}@127.0.0.1:{port}/{s['NAME']}"
    finally:
        subprocess.run([*script, "stop"], env=env, check=True)
        shutil.rmtree(ROOT / "var" / f"pooler-{port}", ignore_errors=True)


def _prepare_on_two_clients(url: str) -> None:
    """Two client connections, one server connection: psycopg names its first prepared
    statement _pg3_0 on each client, so the second finds the first's on the server."""
    with psycopg.connect(url, autocommit=True) as a, psycopg.connect(url, autocommit=True) as b:
        for conn in (a, b):
            conn.cursor().execute("SELECT %s::int", [1], prepare=pooling.prepare())


def test_it_prepares_no_statement_by_name_when_pooled(pooler: str) -> None:
    with (
        override_settings(DATABASE_POOLED=False),
        pytest.raises(psycopg.errors.DuplicatePreparedStatement),
    ):
        _prepare_on_two_clients(pooler)
    with override_settings(DATABASE_POOLED=True):
        _prepare_on_two_clients(pooler)


def _post(base: str, token: str, body: dict[str, Any]) -> int:
    return httpx.post(
        f"{base}/api/v1/events", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ).status_code


def test_it_stores_every_event_through_a_transaction_pooler(world: World, pooler: str) -> None:
    """Single events (the prepared group-commit statement) and batches of 20 (COPY) from eight
    threads, on eight connections sharing one server connection; the other tenant sees none."""
    at = datetime.now(UTC).isoformat()
    bodies = [{"events": [event(f"one-{i}", timestamp=at)]} for i in range(40)]
    bodies += [{"events": [event(f"b{i}-{j}", timestamp=at) for j in range(20)]} for i in range(10)]
    env = {"DATABASE_URL": pooler, "DATABASE_POOLED": "1"}
    with web_server(env, workers=1) as base, ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda b: _post(base, world.ingest.token, b), bodies))
    assert statuses == [202] * len(bodies)
    assert UsageEvent.objects.for_tenant(world.tenant).count() == 40 + 200
    assert not UsageEvent.objects.for_tenant(world.other_tenant).exists()
