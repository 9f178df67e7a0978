#!/usr/bin/env python
"""Ingest benchmark against PostgreSQL: the COPY limit vs. the real HTTP ingest path.

Run by hand from the project root (PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379):

    .venv/bin/python bench/ingest.py                      # sweep, then 15 s per final phase
    .venv/bin/python bench/ingest.py --seconds 5 --sweep-seconds 2 --configs 2x1,4x1
    .venv/bin/python bench/ingest.py --configs '' --final 4x1@4   # no sweep
    .venv/bin/python bench/ingest.py --configs '' --final 2x8@8,2x8@16   # b's, then c's

All in one run:

1. drops and recreates the database `costboard_bench`, runs `manage.py migrate`, and creates
   tenants, teams and ingest keys with the management commands (Redis database 3 is flushed);
2. (a) the physical limit: psycopg COPY (binary and text) of N rows, built by the app's own
   code (`validate_event`, `ingest.services._rows`), into `bench_copy`, a copy of
   `ingest_usageevent` with all its indexes (`LIKE ... INCLUDING ALL`, no foreign keys); then
   once into the real table, whose three deferred foreign keys are checked per row. For
   reference (a', a'') it calls `ingest.services.ingest_events` in-process with 100 and 1
   events: the whole service path (validation, pricing, transaction, Redis) without HTTP;
3. (b) starts production's web server, `python -m costboard.serve` (granian; `--configs`
   workers x threads are swept with `--connections` client connections each, then the best
   point is run again for `--seconds`) and POSTs `{"events": [100 events]}` from client
   processes: a raw-socket HTTP/1.1 client that keeps connections alive when the server allows
   it (production's does) and costs ~0.1-0.2 ms of CPU per request; its CPU use is printed;
4. (c) the same with one event per request;
5. checks that the database holds exactly the events the 2xx answers said were accepted;
6. prints a table of a, b, c, b/a and pass/fail against the targets.

The CPU used by the web server, postgres (backends of the bench database and the shared WAL writer,
checkpointer...), redis, the client and everything else ("other") is sampled from /proc over
each measured window. On a shared machine the benchmark waits for a quiet moment before each
measurement (`--wait-quiet`) and repeats a run that other programs disturbed (`--retries`).
Server processes are stopped on exit, including Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = ROOT / ".venv" / "bin"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# `bench/ingest.py` would shadow the app's `ingest` package: put the project root first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 0.35
TARGET_P99_MS = 50.0
TARGET_SINGLE_RPS = 1500.0
NOISY_CORES = 0.25  # a run during which other programs used more CPU than this is disturbed
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[i]


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def bench_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.db}",
        REDIS_URL=args.redis_url,
        SECRET_KEY="bench-secret",
        COSTBOARD_PLAIN_HTTP="1",  # plain http on 127.0.0.1
        INGEST_RATE_LIMIT_PER_MINUTE="100000000",
        DJANGO_SETTINGS_MODULE="costboard.settings",
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("DEBUG", None)
    return env


def manage(args: argparse.Namespace, *cmd: str) -> str:
    out = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *cmd],
        cwd=ROOT,
        env=bench_env(args),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise RuntimeError(f"manage.py {' '.join(cmd)} failed with exit status {out.returncode}")
    return out.stdout


def make_event(event_id: str, rnd: random.Random, ts: str) -> dict[str, Any]:
    """One event as a client sends it (SPEC.md, Ingest)."""
    return {
        "event_id": event_id,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": rnd.randint(50, 4000),
        "output_tokens": rnd.randint(10, 1000),
        "feature": rnd.choice(["chat", "search", "summarise", "classify"]),
        "user_id": f"user-{rnd.randint(1, 500)}",
        "latency_ms": rnd.randint(80, 4000),
        "timestamp": ts,
    }


# --------------------------------------------------------------------------------------------
# CPU accounting from /proc
# --------------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, float, int] | None:
    """(comm, ppid, cpu seconds user+system, start time) of a process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    comm = data[data.index("(") + 1 : data.rindex(")")]
    fields = data[data.rindex(")") + 2 :].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[19])


_PG_OURS: dict[tuple[int, int], bool] = {}
BENCH_DB = ["costboard_bench"]


def _postgres_is_ours(pid: int, started: int) -> bool:
    """A backend of the bench database, or a shared auxiliary process (WAL writer, ...)."""
    if (pid, started) not in _PG_OURS:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        activity = title.split(": ", 2)[-1]
        words = activity.split()
        if activity.startswith("parallel worker for PID"):
            leader = _proc_stat(int(words[-1]))
            ours = leader is not None and _postgres_is_ours(int(words[-1]), leader[3])
        else:
            backend = len(words) >= 3 and "(" in words[2]  # "user db host(port) state"
            ours = not backend or words[1] == BENCH_DB[0]
        _PG_OURS[(pid, started)] = ours
    return _PG_OURS[(pid, started)]


GROUPS = ("web", "postgres", "redis", "client")


def process_groups(
    server_pid: int | None, client_pids: list[int]
) -> dict[tuple[int, int], tuple[str, float]]:
    """{(pid, start time): (group, cpu seconds)} for every process the benchmark cares about."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st is not None:
                stats[int(name)] = st
    children: dict[int, list[int]] = {}
    for pid, st in stats.items():
        children.setdefault(st[1], []).append(pid)

    def tree(root: int) -> set[int]:
        seen, todo = set(), [root]
        while todo:
            p = todo.pop()
            if p in stats and p not in seen:
                seen.add(p)
                todo.extend(children.get(p, []))
        return seen

    server = tree(server_pid) if server_pid else set()
    clients = set().union(*(tree(p) for p in client_pids)) if client_pids else set()
    out = {}
    for pid, (comm, _, cpu, started) in stats.items():
        if pid in server:
            group = "web"
        elif pid in clients:
            group = "client"
        elif comm == "postgres" and _postgres_is_ours(pid, started):
            group = "postgres"
        elif comm.startswith("redis-server"):
            group = "redis"
        else:
            continue
        out[(pid, started)] = (group, cpu)
    return out


class CpuMeter:
    """CPU cores used per process group over a window, sampled every 0.25 s so that processes
    starting or exiting inside the window (Django recycles its database connections every
    CONN_MAX_AGE seconds, so postgres backends come and go) are still counted."""

    def __init__(self, server_pid: int | None, client_pids: list[int]) -> None:
        self.server_pid, self.client_pids = server_pid, client_pids
        self.acc = dict.fromkeys(GROUPS, 0.0)
        self.stop_event = threading.Event()
        self.prev = process_groups(server_pid, client_pids)
        self.busy0, self.t0 = machine_busy(), time.time()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        cur = process_groups(self.server_pid, self.client_pids)
        for ident, (group, cpu) in cur.items():
            before = self.prev.get(ident)
            self.acc[group] += cpu - before[1] if before else cpu
        self.prev = cur

    def _run(self) -> None:
        while not self.stop_event.wait(0.25):
            self._sample()

    def stop(self) -> tuple[dict[str, float], float]:
        self.stop_event.set()
        self.thread.join()
        self._sample()
        wall = time.time() - self.t0
        cores = {k: max(0.0, v) / wall for k, v in self.acc.items()}
        cores["machine"] = (machine_busy() - self.busy0) / wall
        cores["other"] = max(0.0, cores["machine"] - sum(cores[g] for g in GROUPS))
        return cores, wall


def proc_cpu(pid: int) -> float:
    st = _proc_stat(pid)
    return st[2] if st else 0.0


def machine_busy() -> float:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    return (sum(parts[:8]) - parts[3] - parts[4]) / CLK_TCK


QUIET = {"max_wait": 120.0, "threshold": 0.3}


def quiet_check(what: str) -> bool:
    """Wait (up to --wait-quiet seconds) until other programs leave the machine idle.

    On a shared box other work skews every figure; the CPU table of each run shows how much
    ("other" cores), and this waits for a quiet moment before each measurement.
    """
    deadline = time.time() + QUIET["max_wait"]
    waited = False
    while True:
        b0, t0 = machine_busy(), time.time()
        time.sleep(0.5)
        busy = (machine_busy() - b0) / (time.time() - t0)
        if busy <= QUIET["threshold"]:
            if waited:
                log(f"machine quiet again ({busy:.2f} cores busy), starting {what}")
            return True
        if time.time() >= deadline:
            log(f"WARNING: starting {what} while other programs keep {busy:.2f} cores busy")
            return False
        if not waited:
            log(f"waiting for other programs to leave the machine idle ({busy:.2f} cores busy)")
            waited = True


def fmt_cpu(cores: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.2f}" for k, v in cores.items()) + f"  (of {os.cpu_count()} cores)"


# --------------------------------------------------------------------------------------------
# setup
# --------------------------------------------------------------------------------------------


def setup_database(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg
    import redis

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db}"')
    log(f"created database {args.db}; migrating")
    manage(args, "migrate", "--no-input", "-v", "0")
    redis.Redis.from_url(args.redis_url).flushdb()  # only the bench's own Redis database
    keys = {}
    for tenant in ("bench", "bench-copy"):
        manage(args, "create_tenant", tenant)
        manage(args, "create_team", tenant, "core")
        keys[tenant] = (
            manage(args, "create_api_key", tenant, "--team", "core").strip().splitlines()[-1]
        )
    log("tenant 'bench' (HTTP phases) and 'bench-copy' (COPY phase) ready, ingest keys created")
    return keys


# --------------------------------------------------------------------------------------------
# (a) COPY: the physical limit
# --------------------------------------------------------------------------------------------


def phase_copy(args: argparse.Namespace, copy_key: str) -> dict[str, Any]:
    env = bench_env(args)
    for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "LOG_LEVEL"):
        os.environ[k] = env[k]
    import django

    django.setup()
    import psycopg
    from django.db import connections
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from ingest.services import COLUMNS, PG_TYPES, TABLE, _rows
    from ingest.validation import validate_event
    from tenants.selectors import api_key_from_token

    key = api_key_from_token(copy_key)
    assert key is not None
    n = args.copy_rows
    rnd = random.Random(1)
    now = timezone.now()
    ts = (now - timedelta(seconds=30)).isoformat()

    def build(prefix: str, count: int) -> tuple[list[tuple[Any, ...]], float, float]:
        raws = [make_event(f"{prefix}-{i:09d}", rnd, ts) for i in range(count)]
        t0 = time.perf_counter()
        valid = []
        for raw in raws:
            event, errors = validate_event(raw, now)
            assert event is not None and not errors, errors
            valid.append((event, key.team_id))
        t1 = time.perf_counter()
        rows = list(_rows(key, 0, valid, now))
        t2 = time.perf_counter()
        # The tags come as dicts; Jsonb adapts them for text COPY as well as binary.
        tags = COLUMNS.index("tags")
        rows = [(*row[:tags], Jsonb(row[tags]), *row[tags + 1 :]) for row in rows]
        return rows, (t1 - t0) / count * 1e6, (t2 - t1) / count * 1e6

    url = f"postgresql://postgres@127.0.0.1:5432/{args.db}"
    cols = ", ".join(COLUMNS)
    binary_types = [{"int": "integer"}.get(t, t) for t in PG_TYPES]
    results: dict[str, Any] = {"runs": []}
    with psycopg.connect(url) as conn:
        backend = conn.info.backend_pid

        def copy_rows(table: str, fmt: str, prefix: str) -> float:
            rows, us_validate, us_rows = build(prefix, n)
            results["us_validate"], results["us_rows"] = us_validate, us_rows
            conn.execute("CHECKPOINT")
            conn.commit()
            quiet_check(f"COPY {fmt} into {table}")
            busy0, srv0, cli0 = machine_busy(), proc_cpu(backend), time.process_time()
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                binary = " (FORMAT BINARY)" if fmt == "binary" else ""
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN{binary}") as copy:
                    if binary:
                        copy.set_types(binary_types)
                    for row in rows:
                        copy.write_row(row)
            conn.commit()
            dt = time.perf_counter() - t0
            backend_cpu = (proc_cpu(backend) - srv0) / dt
            client_cpu = (time.process_time() - cli0) / dt
            other = max(0.0, (machine_busy() - busy0) / dt - backend_cpu - client_cpu)
            log(
                f"(a) COPY {fmt:6s} into {table}: {n:,} rows in {dt:.2f} s = "
                f"{fmt_int(n / dt)} rows/s  (cores: postgres backend {backend_cpu:.2f}, "
                f"psycopg client {client_cpu:.2f}, rest of machine {other:.2f})"
            )
            return n / dt

        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(f"CREATE TABLE bench_copy (LIKE {TABLE} INCLUDING ALL)")
        conn.commit()
        for rep in range(args.copy_reps):
            for fmt in ("binary", "text"):
                rate = copy_rows("bench_copy", fmt, f"copy-{fmt}-{rep}")
                results["runs"].append((fmt, rate))
                results[fmt] = max(results.get(fmt, 0.0), rate)
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
        # The real table also checks its foreign keys, once per row and key.
        results["fks"] = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [TABLE],
        ).fetchone()[0]
        results["indexes"] = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = %s", [TABLE]
        ).fetchone()[0]
        log(f"    {TABLE}: {results['indexes']} indexes, {results['fks']} foreign keys")
        results["real_table"] = copy_rows(TABLE, "binary", "copy-real")
        log(
            f"    app CPU per event outside the database (this process): validate_event "
            f"{results['us_validate']:.1f} µs, price + build row {results['us_rows']:.1f} µs"
        )

    # Reference: the app's own ingest service (validation, pricing, the transaction, the
    # Redis rollup flag), called in-process from one thread: no HTTP, no Django request.
    from ingest.services import ingest_events

    for label, size, count in (("a'", args.batch, args.sql_batches), ("a''", 1, args.sql_singles)):
        payloads = [
            [make_event(f"svc{size}-{b:06d}-{i:04d}", rnd, ts) for i in range(size)]
            for b in range(count)
        ]
        ingest_events(key, payloads.pop())  # warm the connection and the pricer
        quiet_check(f"({label})")
        lat, cpu0 = [], time.process_time()
        t0 = time.perf_counter()
        for raws in payloads:
            s = time.perf_counter()
            res = ingest_events(key, raws)
            lat.append(time.perf_counter() - s)
            assert res.accepted == size, res.as_dict()
        dt = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        lat.sort()
        results[label] = {
            "eps": len(payloads) * size / dt, "rps": len(payloads) / dt,
            "p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3,
            "cpu_us": cpu / len(payloads) * 1e6,
        }  # fmt: skip
        r = results[label]
        log(
            f"({label}) ingest_events() in-process, {size} event(s) per call, 1 thread: "
            f"{fmt_int(r['rps'])} calls/s = {fmt_int(r['eps'])} events/s, p50 {r['p50']:.2f} ms, "
            f"p99 {r['p99']:.2f} ms, Python CPU {r['cpu_us']:.0f} µs per call"
        )
    connections.close_all()
    results["a"] = max(results["text"], results["binary"])
    return results


# --------------------------------------------------------------------------------------------
# HTTP load client (runs in separate processes)
# --------------------------------------------------------------------------------------------


class Conn:
    """A minimal HTTP/1.1 client: one socket, keep-alive when the server allows it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> None:
        s = socket.create_connection(("127.0.0.1", self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = s, b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def request(self, data: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self._connect()
        assert self.sock is not None
        self.sock.sendall(data)
        buf = self.buf
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body


class BodyTemplate:
    """Pre-rendered request bytes; only the event ids change (fixed width, same length)."""

    def __init__(self, port: int, key: str, prefix: str, batch: int, seed: int) -> None:
        rnd = random.Random(seed)
        ts = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
        events = []
        for i in range(batch):
            doc = json.dumps(make_event("@@ID@@", rnd, ts), separators=(",", ":"))
            events.append(doc.replace("%", "%%").replace("@@ID@@", f"{prefix}-%(n)s-{i:04d}"))
        body = events[0] if batch == 1 else '{"events":[' + ",".join(events) + "]}"
        length = len((body % {"n": "0" * 10}).encode())
        head = (
            "POST /api/v1/events HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        )
        self.template = (head.replace("%", "%%") + body).encode()

    def render(self, n: int) -> bytes:
        return self.template % {b"n": b"%010d" % n}


def client_process(cfg: dict[str, Any], out: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up on Ctrl-C
    start_at, warmup, seconds = cfg["start_at"], cfg["warmup"], cfg["seconds"]
    measure_from = start_at + warmup
    measure_to = measure_from + seconds
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def run(tid: int) -> None:
        prefix = f"{cfg['prefix']}-{tid:02d}"
        tpl = BodyTemplate(cfg["port"], cfg["key"], prefix, cfg["batch"], hash(prefix) & 0xFFFF)
        conn = Conn(cfg["port"])
        lat: list[float] = []
        r = {"requests": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0,
             "unknown": 0, "unknown_events": 0, "all_requests": 0, "status": {}, "accepted_measured": 0, "first_error": ""}  # fmt: skip
        n = 0
        while time.time() < start_at:
            time.sleep(0.001)
        while True:
            now = time.time()
            if now >= measure_to:
                break
            data = tpl.render(n)
            n += 1
            r["all_requests"] += 1
            t0 = time.perf_counter()
            try:
                status, body = conn.request(data)
            except OSError as exc:  # sent or not, we cannot tell what the server stored
                conn.close()
                r["errors"] += 1
                r["unknown"] += 1
                r["unknown_events"] += cfg["batch"]
                r["first_error"] = r["first_error"] or repr(exc)
                time.sleep(0.01)
                continue
            dt = time.perf_counter() - t0
            r["status"][status] = r["status"].get(status, 0) + 1
            if status in (200, 202, 400):
                doc = json.loads(body)
                acc = doc.get("accepted", 0)
                r["accepted"] += acc
                r["duplicates"] += doc.get("duplicates", 0)
                r["rejected"] += len(doc.get("rejected", []))
            else:
                acc = 0
                r["first_error"] = r["first_error"] or f"{status} {body[:200]!r}"
            if now >= measure_from:
                lat.append(dt)
                r["requests"] += 1
                r["accepted_measured"] += acc
        conn.close()
        r["lat"] = lat
        with lock:
            results.append(r)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(cfg["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged: dict[str, Any] = {"lat": [], "status": {}, "first_error": ""}
    for r in results:
        merged["lat"].extend(r.pop("lat"))
        for s, c in r.pop("status").items():
            merged["status"][s] = merged["status"].get(s, 0) + c
        merged["first_error"] = merged["first_error"] or r.pop("first_error")
        r.pop("first_error", None)
        for k, v in r.items():
            merged[k] = merged.get(k, 0) + v
    merged["client_cpu"] = time.process_time()
    out.put(merged)


# --------------------------------------------------------------------------------------------
# server management
# --------------------------------------------------------------------------------------------


class Servers:
    """Every web server we start, killed (by its own process group) on exit or Ctrl-C."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, args: argparse.Namespace, workers: int, threads: int
    ) -> subprocess.Popen[bytes]:
        # Production's configuration (worker class, keep-alive); only the counts vary.
        cmd = [
            str(VENV_BIN / "python"), "-m", "costboard.serve",
            "--bind", f"127.0.0.1:{args.port}", "--workers", str(workers),
            "--threads", str(threads), "--log-level", "warning",
        ]  # fmt: skip
        with open(args.server_log, "ab") as logfile:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=bench_env(args), start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs.append(proc)
        wait_ready(args, proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # give the port back before the next start
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", proc_port(proc)), timeout=0.2).close()
                time.sleep(0.1)
            except OSError:
                break
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)


def proc_port(proc: subprocess.Popen[bytes]) -> int:
    return int(str(proc.args[proc.args.index("--bind") + 1]).rsplit(":", 1)[1])  # type: ignore[index, union-attr]


def wait_ready(args: argparse.Namespace, proc: subprocess.Popen[bytes]) -> None:
    probe = (
        f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Authorization: Bearer {args.key}\r\nContent-Type: application/json\r\n"
        'Content-Length: 13\r\n\r\n{"events":[]}'
    ).encode()
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the web server exited with {proc.returncode}; see {args.server_log}"
            )
        try:
            status, body = Conn(args.port).request(probe)
            if status == 400 and b"no events" in body:  # authenticated, nothing stored
                return
            raise RuntimeError(
                f"readiness probe got {status}: {body[:200]!r}; see {args.server_log}"
            )
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the web server did not become ready in 30 s")


# --------------------------------------------------------------------------------------------
# one load run
# --------------------------------------------------------------------------------------------

RUN_COUNTER = [0]
RUN_TOKEN = f"{int(time.time() * 1000) % 10**9:09d}"  # event ids unique across invocations


def load(
    args: argparse.Namespace, server: subprocess.Popen[bytes], batch: int, seconds: float,
    label: str, conns: int,
) -> dict[str, Any]:  # fmt: skip
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    quiet_check(label)
    RUN_COUNTER[0] += 1
    out = ctx.Queue()
    procs = []
    start_at = time.time() + 1.5
    nproc = max(1, min(args.client_procs, conns))
    for p in range(nproc):
        threads = conns // nproc + (1 if p < conns % nproc else 0)
        cfg = {
            "port": args.port, "key": args.key, "batch": batch, "threads": threads,
            "start_at": start_at, "warmup": args.warmup, "seconds": seconds,
            "prefix": f"{RUN_TOKEN}r{RUN_COUNTER[0]:03d}p{p}",
        }  # fmt: skip
        proc = ctx.Process(target=client_process, args=(cfg, out), daemon=True)
        proc.start()
        procs.append(proc)
    client_pids = [p.pid for p in procs if p.pid]
    measure_from = start_at + args.warmup
    time.sleep(max(0.0, measure_from - time.time()))
    meter = CpuMeter(server.pid, client_pids)
    time.sleep(max(0.0, measure_from + seconds - time.time()))
    cores, wall_cpu = meter.stop()
    parts = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    lat = sorted(x for part in parts for x in part["lat"])
    total = {k: sum(part[k] for part in parts) for k in (
        "requests", "accepted", "accepted_measured", "duplicates", "rejected", "errors",
        "unknown", "unknown_events", "client_cpu", "all_requests")}  # fmt: skip
    status: dict[int, int] = {}
    for part in parts:
        for s, c in part["status"].items():
            status[s] = status.get(s, 0) + c
    first_error = next((p["first_error"] for p in parts if p["first_error"]), "")
    wall = seconds  # requests are counted when issued inside the window
    res = {
        "label": label,
        "connections": conns,
        "batch": batch,
        "rps": total["requests"] / wall,
        "eps": total["accepted_measured"] / wall,
        "p50": pct(lat, 50) * 1e3,
        "p90": pct(lat, 90) * 1e3,
        "p99": pct(lat, 99) * 1e3,
        "max": (lat[-1] if lat else float("nan")) * 1e3,
        "cpu": cores,
        "client_us_per_req": 0.0,
        "status": status,
        "first_error": first_error,
        **total,
    }
    res["client_us_per_req"] = res["cpu"]["client"] * wall_cpu / max(1, total["requests"]) * 1e6
    bad = {s: c for s, c in status.items() if s not in (200, 202)}
    log(
        f"{label:>26s}: {fmt_int(res['rps']):>6s} req/s {fmt_int(res['eps']):>7s} events/s  "
        f"p50 {res['p50']:6.1f}  p90 {res['p90']:6.1f}  p99 {res['p99']:6.1f}  max {res['max']:6.1f} ms"
        + (f"  non-2xx {bad}" if bad else "")
        + (f"  errors {total['errors']} ({first_error})" if total["errors"] else "")
        + (f"  (server log: {args.server_log})" if any(s >= 500 for s in bad) else "")
    )
    log(f"{'':>26s}  cpu cores: {fmt_cpu(res['cpu'])}")
    return res


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace, server: subprocess.Popen[bytes], batch: int, seconds: float,
    label: str, conns: int, runs: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """`load`, repeated (up to --retries times) while other programs disturbed the run."""
    tries = []
    for attempt in range(args.retries + 1):
        res = load(
            args, server, batch, seconds, label + (f" (retry {attempt})" if attempt else ""), conns
        )
        runs.append(res)  # every run's events count in the final check
        tries.append(res)
        if res["cpu"]["other"] <= NOISY_CORES:
            break
        log(f"{'':>26s}  other programs used {res['cpu']['other']:.2f} cores: run disturbed")
    best = min(tries, key=lambda r: r["cpu"]["other"])
    best["noisy"] = best["cpu"]["other"] > NOISY_CORES
    return best


def parse_configs(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        w, _, t = item.strip().partition("x")
        out.append((int(w), int(t or 1)))
    return out


def verify(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    import psycopg

    claimed = sum(r["accepted"] for r in runs)
    unknown = sum(r["unknown"] for r in runs)
    dups = sum(r["duplicates"] for r in runs)
    answers = sum(c for r in runs for s, c in r["status"].items() if 200 <= s < 300)
    url = f"postgresql://postgres@127.0.0.1:5432/{args.db}"
    with psycopg.connect(url) as conn:
        (tenant_id,) = conn.execute("SELECT id FROM tenants_tenant WHERE slug = 'bench'").fetchone()
        stored, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM ingest_usageevent WHERE tenant_id = %s",
            [tenant_id],
        ).fetchone()
        (batches,) = conn.execute(
            "SELECT count(*) FROM ingest_pendingbatch WHERE tenant_id = %s", [tenant_id]
        ).fetchone()
    unknown_events = sum(r["unknown_events"] for r in runs)
    # A request that failed in flight may or may not have been stored, never twice.
    ok = stored == distinct and claimed <= stored <= claimed + unknown_events and dups == 0
    log(
        f"verify: 2xx answers {answers:,} accepted {claimed:,} events (duplicates {dups}, "
        f"unknown outcomes {unknown}); database holds {stored:,} events ({distinct:,} distinct "
        f"ids) in {batches:,} pending batches -> {'OK' if ok else 'MISMATCH'}"
    )
    return {"ok": ok, "claimed": claimed, "stored": stored}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=15, help="measured seconds per final phase")
    ap.add_argument(
        "--sweep-seconds", type=float, default=4, help="measured seconds per sweep point"
    )
    ap.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    ap.add_argument(
        "--configs",
        default="2x1,3x1,4x1,2x2,2x4,3x2",
        help="web server WORKERSxTHREADS to sweep, comma separated ('' = no sweep)",
    )
    ap.add_argument(
        "--connections",
        default="4,8",
        help="concurrent client connections to sweep, comma separated",
    )
    ap.add_argument(
        "--final",
        default="",
        help="WxT@CONNS for both final runs, e.g. 3x1@8, or for b and c: 3x2@4,3x8@16 "
        "(default: best point of the sweep)",
    )
    ap.add_argument("--client-procs", type=int, default=2, help="client processes")
    ap.add_argument("--batch", type=int, default=100, help="events per request in phase b")
    ap.add_argument("--copy-rows", type=int, default=200_000, help="rows per COPY in phase a")
    ap.add_argument("--copy-reps", type=int, default=2, help="COPY repetitions per format")
    ap.add_argument("--sql-batches", type=int, default=300, help="calls for the a' reference")
    ap.add_argument("--sql-singles", type=int, default=2000, help="calls for the a'' reference")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=120,
        help="before each measurement wait up to this many seconds for an idle machine",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=2,
        help=f"repeat a run disturbed by other programs (> {NOISY_CORES} cores) up to N times",
    )
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--db", default="costboard_bench")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    ap.add_argument(
        "--server-log",
        default=os.path.join(tempfile.gettempdir(), "costboard-bench-web.log"),
    )
    ap.add_argument(
        "--keep", action="store_true", help="leave the last server running (prints its pid)"
    )
    args = ap.parse_args()
    BENCH_DB[0] = args.db
    QUIET["max_wait"] = args.wait_quiet
    Path(args.server_log).write_bytes(b"")
    conn_counts = [int(c) for c in args.connections.split(",") if c.strip()]

    servers = Servers()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C must reach us even when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    runs: list[dict[str, Any]] = []
    try:
        keys = setup_database(args)
        args.key = keys["bench"]
        quiet_check("phase a")
        a = phase_copy(args, keys["bench-copy"])

        # sweep[(workers, threads, connections)] = {"b": run, "c": run}
        sweep: dict[tuple[int, int, int], dict[str, dict[str, Any]]] = {}
        for workers, threads in parse_configs(args.configs) if args.configs else []:
            server = servers.start(args, workers, threads)
            for conns in conn_counts:
                cfg = f"{workers}w x {threads}t, {conns} conns"
                secs = args.sweep_seconds
                point = {
                    "b": measure(args, server, args.batch, secs, f"sweep {cfg} batch", conns, runs),
                    "c": measure(args, server, 1, secs, f"sweep {cfg} single", conns, runs),
                }  # fmt: skip
                sweep[(workers, threads, conns)] = point
            servers.stop(server)

        def best(phase: str) -> tuple[int, int, int]:
            if args.final:
                finals = args.final.split(",")
                cfg, _, conns = finals[-1 if phase == "c" else 0].partition("@")
                w, t = parse_configs(cfg)[0]
                return w, t, int(conns or conn_counts[-1])
            if not sweep:
                return 2, 1, conn_counts[-1]
            clean = [k for k in sweep if not sweep[k][phase]["noisy"]] or list(sweep)
            if phase == "c":
                return max(clean, key=lambda k: sweep[k]["c"]["rps"])
            # b: the most events/s among points meeting the latency target, if any does
            within = [k for k in clean if sweep[k]["b"]["p99"] < TARGET_P99_MS]
            return max(within or clean, key=lambda k: sweep[k]["b"]["eps"])

        finals = {}
        for phase, batch in (("b", args.batch), ("c", 1)):
            workers, threads, conns = best(phase)
            server = servers.start(args, workers, threads)
            kind = "batch" if batch > 1 else "single"
            label = f"final {workers}w x {threads}t, {conns} conns {kind}"
            finals[phase] = measure(args, server, batch, args.seconds, label, conns, runs)
            finals[phase]["config"] = (
                f"python -m costboard.serve --workers {workers} --threads {threads}"
                f", {conns} client connections"
            )
            if args.keep and phase == "c":
                servers.procs.remove(server)
                log(f"server left running: pid {server.pid}, port {args.port}")
            else:
                servers.stop(server)

        check = verify(args, runs)
        print_summary(args, a, sweep, finals, check)
        return 0 if check["ok"] else 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        servers.stop_all()


def print_summary(
    args: argparse.Namespace, a: dict[str, Any],
    sweep: dict[tuple[int, int, int], dict[str, dict[str, Any]]],
    finals: dict[str, dict[str, Any]], check: dict[str, Any],
) -> None:  # fmt: skip
    b, c = finals["b"], finals["c"]
    svc_b, svc_c = a["a'"], a["a''"]
    ratio = b["eps"] / a["a"]
    b_ok = ratio >= TARGET_RATIO and b["p99"] < TARGET_P99_MS
    c_ok = c["rps"] >= TARGET_SINGLE_RPS
    print()
    if sweep:
        print(
            f"Sweep ({args.sweep_seconds:g} s per point, clients in {args.client_procs} processes; "
            "cpu = cores used by web / postgres / client / other programs):"
        )
        print(
            f"  {'web':<9s} {'conns':>5s} {'batch ev/s':>11s} {'p50':>6s} {'p99':>6s}  "
            f"{'cpu g/pg/cl/oth':<19s} {'single req/s':>12s} {'p50':>6s} {'p99':>6s}  cpu g/pg/cl/oth"
        )
        for (w, t, n), r in sweep.items():
            print(
                f"  {f'{w}w x {t}t':<9s} {n:>5d} {noisy(r['b']) + fmt_int(r['b']['eps']):>11s} "
                f"{r['b']['p50']:6.1f} {r['b']['p99']:6.1f}  {cpu_short(r['b']):<19s} "
                f"{noisy(r['c']) + fmt_int(r['c']['rps']):>12s} {r['c']['p50']:6.1f} {r['c']['p99']:6.1f}  "
                f"{cpu_short(r['c'])}"
            )
        if any(r[k].get("noisy") for r in sweep.values() for k in ("b", "c")):
            print(f"  * disturbed: other programs used more than {NOISY_CORES} cores during it")
        print()
    rows = [
        ("a  COPY, physical limit", f"{fmt_int(a['a'])} rows/s", "", ""),
        ("   (best text / binary COPY)", f"{fmt_int(a['text'])} / {fmt_int(a['binary'])}", "", ""),
        ("   COPY into the real table", f"{fmt_int(a['real_table'])} rows/s", f"(+{a['fks']} foreign keys)", ""),
        (f"a' ingest_events({args.batch}), no HTTP", f"{fmt_int(svc_b['eps'])} ev/s",
         f"p99 {svc_b['p99']:.1f} ms, 1 thread", ""),
        ("a'' ingest_events(1), no HTTP", f"{fmt_int(svc_c['rps'])} calls/s",
         f"p99 {svc_c['p99']:.1f} ms, 1 thread", ""),
        (f"b  HTTP batches of {args.batch}", f"{fmt_int(b['eps'])} ev/s",
         f">= {fmt_int(TARGET_RATIO * a['a'])}", "PASS" if ratio >= TARGET_RATIO else "FAIL"),
        ("   b latency p50 / p99", f"{b['p50']:.1f} / {b['p99']:.1f} ms", f"p99 < {TARGET_P99_MS:g} ms",
         "PASS" if b["p99"] < TARGET_P99_MS else "FAIL"),
        ("   ratio b / a", f"{ratio:.3f}", f">= {TARGET_RATIO}", "PASS" if b_ok else "FAIL"),
        ("c  HTTP single events", f"{fmt_int(c['rps'])} req/s", f">= {fmt_int(TARGET_SINGLE_RPS)}",
         "PASS" if c_ok else "FAIL"),
        ("   c latency p50 / p99", f"{c['p50']:.1f} / {c['p99']:.1f} ms", "", ""),
        ("no loss, no doubles", f"{check['stored']:,} stored", f"= {check['claimed']:,} accepted",
         "PASS" if check["ok"] else "FAIL"),
    ]  # fmt: skip
    print(f"Result ({args.seconds:g} s per final phase, {os.cpu_count()} cores)")
    w = max(len(r[0]) for r in rows)
    for name, value, target, verdict in rows:
        print(f"  {name:<{w}s}  {value:>22s}  {target:<22s} {verdict}")
    print(f"  b: {b['config']}")
    print(f"  c: {c['config']}")
    for name, r in (("b", b), ("c", c)):
        print(
            f"  {name} cpu cores: {fmt_cpu(r['cpu'])}; "
            f"client {r['client_us_per_req']:.0f} µs CPU per request"
        )
    worst = max(r["cpu"]["other"] for r in (b, c))
    if worst > NOISY_CORES:
        print(f"  WARNING: other programs used up to {worst:.2f} cores during the final runs")


def noisy(r: dict[str, Any]) -> str:
    return "*" if r.get("noisy") else ""


def cpu_short(r: dict[str, Any]) -> str:
    c = r["cpu"]
    return f"{c['web']:.2f}/{c['postgres']:.2f}/{c['client']:.2f}/{c['other']:.2f}"


if __name__ == "__main__":
    sys.exit(main())
