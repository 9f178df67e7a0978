"""The embedded PostgreSQL server (costboard/embedded_postgres.py), with real servers and
processes: a fresh var directory gets its own server, which later processes reuse and `stop`
ends; two var directories never collide; a second `make demo` beside the first neither."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from costboard import embedded_postgres
from costboard.embedded_postgres import Server
from tests.server import ROOT, free_port, wait_or_kill

# What a process asks its database through Django: which server (port, start time) and database.
WHO_SERVES = (
    "import json; from django.db import connection; cursor = connection.cursor(); "
    "cursor.execute('SELECT current_database(), inet_server_port(), "
    "pg_postmaster_start_time()::text, (SELECT count(*) FROM django_migrations)'); "
    "print(json.dumps(cursor.fetchone()))"
)


def _env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a checkout whose var directory is `var_dir`, with the embedded
    defaults: whatever the suite runs on (CI sets DATABASE_URL), these processes must not."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return {**env, "COSTBOARD_VAR_DIR": str(var_dir), "SECRET_KEY": "test-only-secret-key", **extra}


def _python(var_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=_env(var_dir), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _exited(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie has exited too: it only waits for init to reap it (here that takes seconds).
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False


def _gone(server: Server) -> bool:
    """The server has exited: no postmaster.pid, no process, nothing on its port."""
    pid_file = embedded_postgres.data_dir(server.var_dir) / "postmaster.pid"
    return (
        _exited(server.pid)
        and not pid_file.exists()
        and not embedded_postgres._accepts(server.port)
    )


@pytest.fixture
def new_var_dir() -> Iterator[Callable[..., Path]]:
    """Fresh, empty var directories (`name`: one more level, to make a long path); their servers
    are stopped and their files removed after the test, whatever happened in it."""
    made: list[tuple[Path, Path]] = []

    def make(name: str = "") -> Path:
        # mkdtemp, not tmp_path: pytest's base directory is closed to other users (0700), and
        # as root the server's account must pass through every directory above its data.
        root = Path(tempfile.mkdtemp(prefix="costboard-var-"))
        made.append((root, root / name if name else root))
        return made[-1][1]

    yield make
    for root, var_dir in made:
        embedded_postgres.stop(var_dir)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_it_starts_a_server_for_a_fresh_var_dir_that_other_processes_reuse_until_stopped(
    new_var_dir: Callable[..., Path],
) -> None:
    var_dir = new_var_dir()
    assert embedded_postgres.running(var_dir) is None

    _python(var_dir, "manage.py", "migrate", "--no-input", "-v", "0")
    server = embedded_postgres.running(var_dir)
    assert server is not None
    assert (var_dir / "postgres" / "PG_VERSION").exists()

    first = json.loads(_python(var_dir, "manage.py", "shell", "-v", "0", "-c", WHO_SERVES))
    second = json.loads(_python(var_dir, "manage.py", "shell", "-v", "0", "-c", WHO_SERVES))
    # The same server (port, start time) answered both, on the migrated database costboard.
    assert first == second
    assert first[:2] == ["costboard", server.port] and first[3] > 0
    assert embedded_postgres.running(var_dir) == server
    started = time.perf_counter()
    assert embedded_postgres.ensure_running(var_dir) == server
    assert time.perf_counter() - started < 0.5  # attaching: a file and a connection

    assert _python(var_dir, "-m", "costboard.embedded_postgres", "stop").startswith("stopped")
    assert _gone(server)
    assert embedded_postgres.running(var_dir) is None


@pytest.mark.slow
def test_it_gives_two_var_dirs_two_servers_each_with_its_own_data(
    new_var_dir: Callable[..., Path],
) -> None:
    # The second path is longer than a unix socket's (107 bytes): the server listens on TCP only.
    one, two = new_var_dir(), new_var_dir("a-checkout-with-a-long-path-" * 4)
    assert len(str(two)) > 107
    first, second = embedded_postgres.ensure_running(one), embedded_postgres.ensure_running(two)
    assert first.pid != second.pid and first.port != second.port

    with psycopg.connect(first.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE note (text text)")
        conn.execute("INSERT INTO note VALUES ('only in one')")
    with psycopg.connect(second.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE note (text text)")
        assert conn.execute("SELECT count(*) FROM note").fetchone() == (0,)

    # Stopping one leaves the other serving.
    assert embedded_postgres.stop(one)
    assert _gone(first)
    with psycopg.connect(second.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.slow
def test_it_starts_one_server_when_processes_start_a_fresh_var_dir_at_once(
    new_var_dir: Callable[..., Path],
) -> None:
    var_dir = new_var_dir()
    command = [sys.executable, "-m", "costboard.embedded_postgres", "start"]
    procs = [
        subprocess.Popen(command, cwd=ROOT, env=_env(var_dir), stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    said = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    server = embedded_postgres.running(var_dir)
    assert server is not None
    # All three name the one server; no scratch directory of a second initdb is left.
    assert said == [f"running: pid {server.pid}, {server.url} ({var_dir}/postgres)\n"] * 3
    assert sorted(p.name for p in var_dir.iterdir()) == ["postgres", "postgres.lock"]


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the demo exited:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{base} was not ready after {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_it_runs_a_second_demo_on_another_port_beside_the_first(
    new_var_dir: Callable[..., Path],
) -> None:
    demos: list[tuple[subprocess.Popen[bytes], Path, str]] = []
    try:
        for var_dir in (new_var_dir(), new_var_dir()):
            port = free_port()
            env = _env(var_dir, PORT=str(port), DEMO_EVENTS="300")
            with open(var_dir / "demo.log", "wb") as log:
                # Its own session: a demo that does not stop in time is killed with its children.
                proc = subprocess.Popen(
                    ["bash", "deploy/demo.sh"], cwd=ROOT, env=env, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            demos.append((proc, var_dir, f"http://127.0.0.1:{port}"))
        for proc, var_dir, base in demos:
            _wait_ready(base, proc, var_dir / "demo.log", timeout=120)

        servers = [embedded_postgres.running(var_dir) for _, var_dir, _ in demos]
        assert None not in servers
        assert len({s.port for s in servers if s}) == 2
        for _, _, base in demos:  # both still serve, each from its own database
            assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    finally:
        for proc, _, _ in demos:
            proc.terminate()  # the demo's trap stops its web server, worker, beat and database
        for proc, _, _ in demos:
            wait_or_kill(proc, timeout=60)
    for server in servers:
        assert server is not None and _gone(server)
