"""Costboard's production web server: granian serving `costboard.wsgi`.

    python -m costboard.serve                          # 127.0.0.1:8000
    python -m costboard.serve --bind 0.0.0.0:8000 --access-log

Production, `make demo`, the tests that need a real server and the benchmarks all start the
web process with this module, so production runs what `bench/ingest.py` measured.

Why granian: it parses HTTP and keeps connections alive in Rust, and calls the WSGI app from
a pool of Python threads. Under gunicorn's threaded workers, parsing, keep-alive handling and
thread hand-offs in Python were a third of the CPU of a single-event POST; bench/ingest.py
on 2 cores, same code otherwise: single events 1,536 -> 2,283 requests/s, batches of 100
39.6k -> 46.7k events/s.

Threads, not only processes: concurrent single-event requests of one tenant in one process
share one database commit (ingest/groupcommit.py), and while one thread waits on PostgreSQL
the others keep the core busy. One worker per core, 8 threads each, unless WEB_CONCURRENCY /
WEB_THREADS say otherwise.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import MPServer

APP = "costboard.wsgi:application"
DEFAULT_THREADS = 8


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m costboard.serve", description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1:8000", help="HOST:PORT to listen on")
    parser.add_argument(
        "--workers", type=int, default=_env_int("WEB_CONCURRENCY", os.cpu_count() or 1)
    )
    parser.add_argument("--threads", type=int, default=_env_int("WEB_THREADS", DEFAULT_THREADS))
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--log-level", default=os.environ.get("WEB_LOG_LEVEL", "info"))
    parser.add_argument(
        "--graceful-timeout",
        type=int,
        default=30,
        help="seconds a stopping worker gets to finish its requests before it is killed",
    )
    return parser.parse_args(argv)


def server(args: argparse.Namespace) -> MPServer:
    host, _, port = args.bind.rpartition(":")
    # Worker processes: CPython with the GIL (granian's `Granian` is this class there).
    return MPServer(
        APP,
        address=host or "127.0.0.1",
        port=int(port),
        interface=Interfaces.WSGI,
        workers=args.workers,
        blocking_threads=args.threads,
        # HTTP/1.1 only: clients and the reverse proxy in front speak it; no websockets.
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(keep_alive=True),
        websockets=False,
        log_level=LogLevels(args.log_level),
        log_access=args.access_log,
        # A worker that dies (out of memory, a crash in a C extension) is started again.
        respawn_failed_workers=True,
        # Bounded: a worker told to stop while it was still starting (a stop right after a
        # start, on a loaded machine) was seen to never stop, and the server with it.
        workers_kill_timeout=args.graceful_timeout,
    )


def main(argv: Sequence[str] | None = None) -> None:
    server(parse_args(argv)).serve()


if __name__ == "__main__":
    main()
