"""A real Celery worker process for tests, on the test database and the test Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from costboard.celery import app as celery_app
from tests.server import ROOT, through_pooler

WORKER_APP_PREFIX = "costboard-worker-"


def test_database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def start_worker(concurrency: int = 1, name: str = "celery") -> subprocess.Popen[bytes]:
    """A worker named `name@<host>` (two on one machine need two names, as on two nodes)."""
    env = through_pooler(
        {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "SECRET_KEY": "test-only-secret-key",
            # libpq's application name: pg_stat_activity then tells which worker a backend is.
            "PGAPPNAME": f"{WORKER_APP_PREFIX}{name}",
        }
    )
    cmd = [
        sys.executable, "-m", "celery", "-A", "costboard", "worker", "--loglevel=WARNING",
        f"--concurrency={concurrency}", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "-n", f"{name}@%h",
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(timeout=30)


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Until the worker answers a ping: the tests' freshness clocks start once it consumes
    tasks, not while it imports Django (seconds on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the worker exited with {proc.returncode}"
        if celery_app.control.ping(timeout=0.5):
            return
    raise AssertionError(f"the worker did not answer a ping within {timeout}s")


@contextmanager
def celery_worker(concurrency: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_worker(concurrency)
    try:
        wait_ready(proc)
        yield proc
    finally:
        kill(proc)


def wait_until(check, timeout: float = 60, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout}s waiting for {check.__name__}")
