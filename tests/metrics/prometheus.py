"""A real Prometheus server (Debian's `prometheus`) scraping a live Costboard, for tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.server import ROOT, free_port, wait_or_kill

requires_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not installed (apt-get install prometheus; .ci/run installs it)",
)
SCRAPE_SECONDS = 1


@dataclass(frozen=True)
class Prometheus:
    """The HTTP API of a running server."""

    base: str

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.base}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        data = self.get("query_range", query=expr, start=start, end=end, step=SCRAPE_SECONDS)
        return list(data["result"])


def _config(target: str, token_file: Path) -> dict[str, Any]:
    """deploy/prometheus.yml's job, scraping every second, with the shipped alert rules."""
    shipped = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    (job,) = shipped["scrape_configs"]
    job["authorization"]["credentials_file"] = str(token_file)
    job["static_configs"] = [{"targets": [target]}]
    every = f"{SCRAPE_SECONDS}s"
    return {
        "global": {"scrape_interval": every, "scrape_timeout": every, "evaluation_interval": every},
        "rule_files": [str(ROOT / "deploy/alert-rules.yml")],
        "scrape_configs": [job],
    }


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("prometheus did not become ready")


@contextmanager
def prometheus_server(costboard: str, token: str, workdir: Path) -> Iterator[Prometheus]:
    """Prometheus on 127.0.0.1 (a free port, its own storage under `workdir`) scraping the
    Costboard at base URL `costboard` with `token`; killed on the way out."""
    token_file = workdir / "metrics_token"
    token_file.write_text(token)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(_config(costboard.removeprefix("http://"), token_file)))
    base = f"http://127.0.0.1:{free_port()}"
    cmd = [
        "prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={base.removeprefix('http://')}", "--log.level=warn",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=workdir, start_new_session=True)
    try:
        _wait_ready(base, proc)
        yield Prometheus(base)
    finally:
        proc.terminate()
        wait_or_kill(proc, timeout=15)
