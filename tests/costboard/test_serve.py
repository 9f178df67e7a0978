"""The production web server's options: what an operator sets through the environment."""

from __future__ import annotations

import pytest
from granian.constants import HTTPModes, Interfaces

from costboard.serve import DEFAULT_THREADS, parse_args, server


def test_it_runs_one_worker_per_core_with_eight_threads_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("WEB_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    args = parse_args([])
    assert (args.workers, args.threads, args.bind) == (3, DEFAULT_THREADS, "127.0.0.1:8000")


def test_it_takes_workers_and_threads_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setenv("WEB_THREADS", "16")
    built = server(parse_args(["--bind", "10.0.0.5:9000"]))
    assert (built.workers, built.blocking_threads) == (4, 16)
    assert (built.bind_addr, built.bind_port) == ("10.0.0.5", 9000)
    assert (built.interface, built.http) == (Interfaces.WSGI, HTTPModes.http1)
    assert built.workers_kill_timeout == 30
