"""Run the real production server (granian, `costboard.serve`) in a subprocess for tests that
need one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
# CI's pooled stage (.ci/run): the test run makes and migrates its database directly on
# PostgreSQL (PgBouncer cannot CREATE DATABASE for it), while the servers and workers it
# starts connect through the PgBouncer listening on this port, as in production.
POOLER_PORT = os.environ.get("COSTBOARD_TEST_CHILD_DATABASE_PORT", "")
POOLER_HOST = os.environ.get("COSTBOARD_TEST_CHILD_DATABASE_HOST", "127.0.0.1")


def through_pooler(env: dict[str, str]) -> dict[str, str]:
    """`env` for a child process, its DATABASE_URL moved onto the pooler when one is set and
    the URL names the suite's own server (not a proxy or a dead port a test chose)."""
    url = env.get("DATABASE_URL", "")
    direct = urlsplit(os.environ.get("DATABASE_URL", ""))
    parts = urlsplit(url)
    if not POOLER_PORT or not url or (parts.hostname, parts.port) != (direct.hostname, direct.port):
        return env
    user = f"{parts.username}@" if parts.username else ""
    pooled = parts._replace(netloc=f"{user}{POOLER_HOST}:{POOLER_PORT}").geturl()
    return {**env, "DATABASE_URL": pooled, "DATABASE_POOLED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until a worker answers: the server listens before its workers have imported the app, and
    on a busy machine booting one takes seconds, longer than a test client's timeout."""
    probe = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
                sock.sendall(probe)
                if sock.recv(16).startswith(b"HTTP/"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


@contextmanager
def web_server(env: dict[str, str], workers: int = 2) -> Iterator[str]:
    """Yield the base URL of the production web server serving Costboard with `env` on top of
    ours, configured as in production (`costboard.serve`) but for the number of workers."""
    port = free_port()
    # Plain http, as tests talk to it (the documented switch); a test of the HTTPS defaults
    # passes COSTBOARD_PLAIN_HTTP=0.
    full_env = through_pooler(
        {**os.environ, "SECRET_KEY": "test-only-secret-key", "COSTBOARD_PLAIN_HTTP": "1", **env}
    )
    cmd = [
        sys.executable, "-m", "costboard.serve", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--log-level", "warning", "--graceful-timeout", "5",
    ]  # fmt: skip
    # A session of its own, so a server that does not stop in time is killed with its workers.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, start_new_session=True)
    try:
        _wait_for(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        wait_or_kill(proc, timeout=15)


def wait_or_kill(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a process told to stop; past `timeout`, kill its session and fail loudly."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
