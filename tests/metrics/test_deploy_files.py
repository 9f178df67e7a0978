"""deploy/: the Prometheus config, the alert rules and their unit tests, Grafana, compose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import World
from tests.metrics.helpers import parse, requires_promtool, scrape, seed
from tests.server import ROOT

DEPLOY = ROOT / "deploy"
# Families that have no samples (so no lines) until something exists: budgets here.
NOT_YET_EXPORTED = {"costboard_budget_spend_ratio"}


def _promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True)


@requires_promtool
def test_it_ships_a_prometheus_config_that_promtool_accepts_as_it_is() -> None:
    # Exactly what an operator types at the repository's root, with no token file made first.
    proc = _promtool("check", "config", "deploy/prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: deploy/prometheus.yml is valid" in proc.stdout


@requires_promtool
def test_it_fails_the_config_check_when_the_token_file_is_missing(tmp_path: Path) -> None:
    # Why the placeholder exists: promtool refuses a credentials_file it cannot find.
    for name in ("prometheus.yml", "alert-rules.yml"):
        shutil.copy(DEPLOY / name, tmp_path / name)
    proc = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert proc.returncode == 1
    assert "metrics_token" in proc.stdout + proc.stderr


def test_it_ships_the_token_placeholder_empty() -> None:
    # Compose writes the real token inside the container; one in the repository is a leak.
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "metrics_token"}
    assert (DEPLOY / "metrics_token").read_bytes() == b""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["prometheus"]
    assert "/etc/prometheus/metrics_token" in "\n".join(compose["entrypoint"])
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in compose["volumes"]


@requires_promtool
def test_it_ships_alert_rules_that_promtool_accepts() -> None:
    proc = _promtool("check", "rules", "deploy/alert-rules.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@requires_promtool
def test_it_passes_the_alert_rule_unit_tests() -> None:
    proc = _promtool("test", "rules", "deploy/alert-rules.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / "alert-rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_it_unit_tests_every_alert_both_firing_and_silent() -> None:
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    tests = yaml.safe_load((DEPLOY / "alert-rules.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    silent = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert alerts == fired == silent
    assert len(alerts) >= 8


def _metric_names(expr: str) -> set[str]:
    """Costboard metric and recording-rule names in a PromQL expression (strings dropped)."""
    return set(re.findall(r"\b(costboard[a-z0-9_:]*|up)\b", re.sub(r'"[^"]*"', '""', expr)))


def test_it_only_queries_metrics_that_costboard_exports(world: World, settings: Any) -> None:
    seed(world)
    settings.METRICS_DAILY_BUDGET_USD = "100"
    exported = {name for name, _ in parse(scrape())} | {"up"}
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    known = exported | recorded | NOT_YET_EXPORTED
    dashboard = json.loads((DEPLOY / "grafana/dashboards/costboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    exprs += [rule["expr"] for rule in _rules()]
    used = {name for expr in exprs for name in _metric_names(expr)}
    assert used - known == set()
    assert {"costboard_cost_usd_total", "costboard_request_latency_seconds_bucket"} <= used


def test_it_provisions_grafana_with_the_dashboard_the_compose_file_mounts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{source} is mounted but missing"
    assert {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker",
        "beat",
        "prometheus",
        "grafana",
    } <= set(compose["services"])
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/costboard.yml").read_text()
    )
    grafana_mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert (
        grafana_mounts["./deploy/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    )
    dashboard = json.loads((DEPLOY / "grafana/dashboards/costboard.json").read_text())
    titles = {p["title"] for p in dashboard["panels"]}
    assert {
        "Daily cost by team",
        "Spend, last 24 h",
        "Requests by model",
        "Tokens by type",
    } <= titles
    assert {"Latency percentiles", "Tokens per request", "Budget spend ratio"} <= titles
