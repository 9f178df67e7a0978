"""Beat processes and the broker's queue, for the tests of several nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import connection

from rollups.services import rollup_lock_key
from tests.server import POOLER_HOST, POOLER_PORT, ROOT, through_pooler
from tests.worker import WORKER_APP_PREFIX, test_database_url

QUEUE = "celery"  # Celery's default queue: a Redis list of JSON messages
# The clients holding a single-key advisory lock (pg_locks splits the key: objsubid 1 marks
# the one-bigint form, objid its low 32 bits, which is all of a crc32 key).
HOLDERS_SQL = """
SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.objid = %s
"""
WAITERS_SQL = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 AND objid = %s
"""


class RollupGate:
    """The test holding a tenant's rollup lock (a session lock, on a direct connection of its
    own): a worker's rollup then waits at its start, inside its transaction, until the test
    opens the gate, so the test is already looking when the rollup runs, however fast it is."""

    def __init__(self, tenant_id: int) -> None:
        s = connection.settings_dict
        self.key = rollup_lock_key(tenant_id)
        self._conn = psycopg.connect(
            host=s["HOST"], port=s["PORT"], dbname=s["NAME"], user=s["USER"], autocommit=True
        )
        self._conn.execute("SELECT pg_advisory_lock(%s)", [self.key])

    def waiting(self) -> bool:
        """A rollup is waiting at the gate."""
        row = self._conn.execute(WAITERS_SQL, [self.key]).fetchone()
        return bool(row and row[0])

    def open(self) -> None:
        self._conn.close()  # the session lock goes with the session


def worker_rolling_up(tenant_id: int) -> str | None:
    """The name of the test worker (`tests.worker.start_worker`) rolling the tenant up now:
    its connection holds the tenant's rollup lock, inside the transaction. One query, so even
    a rollup of a few milliseconds is seen."""
    for name in _lock_holders(rollup_lock_key(tenant_id)):
        if name.startswith(WORKER_APP_PREFIX):
            return name.removeprefix(WORKER_APP_PREFIX)
    return None


def _lock_holders(key: int) -> list[str]:
    """The application names (libpq's PGAPPNAME) of the clients holding advisory lock `key`.

    Through PgBouncer a backend serves whichever client has it for the transaction, and its
    own application_name is stale, so the client is found from the pooler's admin console:
    the server whose backend pid holds the lock, and the client it is linked to now."""
    with connection.cursor() as cursor:
        cursor.execute(HOLDERS_SQL, [key])
        held = dict(cursor.fetchall())
    if not held or not POOLER_PORT:
        return list(held.values())
    with psycopg.connect(
        host=POOLER_HOST, port=POOLER_PORT, dbname="pgbouncer",
        user=connection.settings_dict["USER"], autocommit=True, cursor_factory=psycopg.ClientCursor,
    ) as admin:  # fmt: skip
        servers = _show(admin, "SERVERS")
        clients = {c["ptr"]: c["application_name"] for c in _show(admin, "CLIENTS")}
    return [clients.get(s["link"], "") for s in servers if s["remote_pid"] in held]


def _show(admin: psycopg.Connection[Any], what: str) -> list[dict[str, Any]]:
    """A SHOW of PgBouncer's admin console (simple query protocol only) as dicts."""
    cursor = admin.execute(f"SHOW {what}")
    names = [d.name for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def start_beat(workdir: Path, name: str, lock_seconds: int = 30) -> subprocess.Popen[bytes]:
    """A beat process with its own schedule file (as on its own node); its log in workdir."""
    env = through_pooler(
        {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "SECRET_KEY": "test-only-secret-key",
            "BEAT_LOCK_SECONDS": str(lock_seconds),
        }
    )
    cmd = [
        sys.executable, "-m", "celery", "-A", "costboard", "beat", "--loglevel=INFO",
        "--schedule", str(workdir / f"{name}-schedule"),
    ]  # fmt: skip
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)


def beat_log(workdir: Path, name: str) -> str:
    return (workdir / f"{name}.log").read_text(errors="replace")


def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def queued() -> list[dict[str, Any]]:
    """The headers of every task message waiting in the queue (task name, origin)."""
    return [json.loads(raw)["headers"] for raw in broker().lrange(QUEUE, 0, -1)]


def sent_by(pid: int) -> str:
    """A message's origin header names the sending process: gen<pid>@<host>."""
    return f"gen{pid}@"
