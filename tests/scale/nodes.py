"""Beat processes and the broker's queue, for the tests of several nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
from django.conf import settings

from tests.server import ROOT, through_pooler
from tests.worker import test_database_url

QUEUE = "celery"  # Celery's default queue: a Redis list of JSON messages


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
