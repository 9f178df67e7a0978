"""A real hot standby of the machine's PostgreSQL 15, on a port of its own, for replica tests.

Why not `pg_basebackup -R`: the machine's pg_hba.conf has no `replication` line (`all` does
not match physical replication), and tests must not edit it or restart the shared server. So
the standby is made the way pg_basebackup makes one, with SQL a superuser may run: a
non-exclusive `pg_backup_start()`, a copy of the data directory, `pg_backup_stop()`'s label,
and a temporary replication slot that keeps the primary's WAL while the standby lives (it goes
away with this session, so a crashed test cannot pin WAL on a shared server). The standby then
replays the primary's WAL as it is written, read from the primary's pg_wal by
`restore_command` (log shipping) rather than over a walsender; what Costboard sees is the same:
a read-only server in recovery whose data trails the primary, and whose replay can be paused.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.server import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
ACCOUNT = "postgres"
# Settings a hot standby must have at least as high as its primary, or it refuses to start.
AT_LEAST_PRIMARY = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)
SKIP = {"postmaster.pid", "postmaster.opts", "pg_internal.init"}
EMPTY_DIRS = {"pg_wal", "pg_replslot", "pg_stat_tmp", "pg_dynshmem", "pg_notify", "pg_serial"}


def available() -> bool:
    return (BIN / "postgres").exists() and os.geteuid() == 0


@dataclass
class Standby:
    port: int
    data: Path

    def sql(self, query: str) -> list[tuple[object, ...]]:
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:  # fmt: skip
            return conn.execute(query).fetchall()

    def pg_ctl(self, *args: str) -> None:
        _as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args])

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "fast")

    def start(self, wait: bool = True) -> None:
        # Without waiting: a restarted standby replays all WAL since its last restartpoint
        # before it answers, tens of seconds on a busy machine; `wait_ready` waits for that.
        log = str(self.data / "standby.log")
        if wait:
            self.pg_ctl("start", "-l", log)
        else:
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-W", "start", "-l", log])

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.sql("SELECT pg_is_in_recovery()") == [(True,)]:
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)


def _as_postgres(cmd: list[str]) -> None:
    subprocess.run(["runuser", "-u", ACCOUNT, "--", *cmd], check=True, stdout=subprocess.DEVNULL)


def _copy(source: Path, target: Path, keep: set[str]) -> None:
    """The cluster's files but for the databases other than `keep` (oids), which stay empty.

    Torn pages of a running cluster's copy are repaired by the full-page images of the WAL
    replayed from the backup's start, as with pg_basebackup. Leaving out the other databases of
    the shared machine (some are benchmarks of hundreds of MB) takes the copy from about two
    minutes to seconds here; the standby skips their WAL (ignore_invalid_pages)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        inside = {n for n in names if n in SKIP}
        if Path(directory).name in EMPTY_DIRS:
            inside |= {n for n in names if n != "archive_status"}
        if Path(directory).parent == source / "base" and Path(directory).name not in keep:
            inside |= set(names)
        return inside

    shutil.copytree(source, target, ignore=ignore, symlinks=True, dirs_exist_ok=True)


def _configure(data: Path, port: int, primary: psycopg.Connection, wal: Path) -> None:
    settings = [(name, primary.execute(f"SHOW {name}").fetchone()[0]) for name in AT_LEAST_PRIMARY]  # type: ignore[index]
    conf = [
        f"port = {port}",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{data}'",
        f"hba_file = '{data}/pg_hba.conf'",
        "shared_buffers = 32MB",
        "hot_standby = on",
        # Replay a WAL segment of the primary's as soon as it holds new records.
        f"restore_command = 'cp {wal}/%f %p'",
        "wal_retrieve_retry_interval = 500ms",
        "max_standby_streaming_delay = -1",
        "max_standby_archive_delay = -1",
        "ignore_invalid_pages = on",  # WAL of the databases left out of the copy
        *(f"{name} = '{value}'" for name, value in settings),
    ]
    (data / "postgresql.conf").write_text("\n".join(conf) + "\n")
    (data / "postgresql.auto.conf").write_text("")
    (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    (data / "standby.signal").write_text("")


@contextmanager
def standby(database: str, primary_port: int = 5432) -> Iterator[Standby]:
    """A hot standby of the PostgreSQL on 127.0.0.1:`primary_port` with `database` (and the
    templates and `postgres`), in recovery and caught up; stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="costboard-standby-"))
    data, port = root / "data", free_port()
    uid = pwd.getpwnam(ACCOUNT).pw_uid
    os.chown(root, uid, -1)
    with psycopg.connect(host="127.0.0.1", port=primary_port, user="postgres", dbname="postgres",
                         autocommit=True) as primary:  # fmt: skip
        source = Path(str(primary.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
        slot = f"costboard_test_{os.getpid()}"
        primary.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", [slot])
        primary.execute("SELECT pg_backup_start('costboard replica test', true)")
        wanted = ["template0", "template1", "postgres", database]
        rows = primary.execute(
            "SELECT oid::text FROM pg_database WHERE datname = ANY(%s)", [wanted]
        )
        _copy(source, data, keep={oid for (oid,) in rows})
        label, spcmap = primary.execute(
            "SELECT labelfile, spcmapfile FROM pg_backup_stop(false)"
        ).fetchone()  # type: ignore[misc]
        (data / "backup_label").write_text(label)
        if spcmap:
            (data / "tablespace_map").write_text(spcmap)
        _configure(data, port, primary, source / "pg_wal")
        subprocess.run(["chown", "-R", f"{ACCOUNT}:{ACCOUNT}", str(root)], check=True)
        os.chmod(data, 0o700)
        node = Standby(port=port, data=data)
        try:
            node.start()
            _wait_caught_up(node, primary)
            yield node
        finally:
            subprocess.run(["runuser", "-u", ACCOUNT, "--", str(BIN / "pg_ctl"), "-D", str(data),
                            "-w", "stop", "-m", "immediate"], capture_output=True)  # fmt: skip
            shutil.rmtree(root, ignore_errors=True)


def _wait_caught_up(node: Standby, primary: psycopg.Connection, timeout: float = 60) -> None:
    target = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rows = node.sql(f"SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= '{target}'")
            if rows[0] == (True, True):
                return
        except psycopg.OperationalError:
            pass  # still starting up
        time.sleep(0.2)
    raise RuntimeError(f"standby not caught up: {(node.data / 'standby.log').read_text()[-2000:]}")
