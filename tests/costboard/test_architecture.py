"""The house rules of the code base, checked on every run.

Apps are the repository's top-level Python packages; `costboard` is the project package that
wires them together. An import counts wherever it is written: at module level, inside a
function, or under `TYPE_CHECKING` (migrations and tests are left out).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_APPS = {"tests", "bench", "clients", "deploy", "static", "templates", "var"}
PROJECT = "costboard"
BASE = "core"


@cache
def packages() -> frozenset[str]:
    return frozenset(
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").exists() and p.name not in NOT_APPS and not p.name.startswith(".")
    )


@cache
def imports() -> dict[str, dict[str, str]]:
    """For each package: the other packages it imports, each with one file that does."""
    edges: dict[str, dict[str, str]] = {p: {} for p in packages()}
    for package in packages():
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                for name in _imported(node):
                    top = name.split(".")[0]
                    if top in edges and top != package:
                        edges[package].setdefault(top, str(path.relative_to(ROOT)))
    return edges


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level and node.module:
        return [node.module]
    return []


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(imports()[start])
    while todo:
        package = todo.pop()
        if package not in seen:
            seen.add(package)
            todo.extend(imports()[package])
    return seen


def test_it_finds_the_apps_it_checks() -> None:
    # Guards the checks below against passing because they looked at nothing.
    assert {PROJECT, BASE, "ingest", "rollups", "pipeline", "dashboard"} <= packages()
    assert "rollups" in imports()["pipeline"]


def test_it_has_no_app_that_imports_the_project_package() -> None:
    offenders = {p: where[PROJECT] for p, where in imports().items() if PROJECT in where}
    assert offenders == {}


def test_it_has_no_import_cycle_between_apps() -> None:
    cycles = {p: sorted(reachable(p)) for p in packages() if p in reachable(p)}
    assert cycles == {}


def test_it_keeps_the_base_layer_free_of_feature_apps() -> None:
    assert imports()[BASE] == {}


def test_it_keeps_ingest_and_rollups_unaware_of_what_follows_them() -> None:
    # What happens after events are stored is `pipeline`'s to say, in one place.
    assert "rollups" not in reachable("ingest")
    assert not {"budgets", "anomalies", "metrics", "pipeline"} & reachable("rollups")


def test_it_keeps_the_audit_log_low_enough_for_every_feature_to_write_to() -> None:
    # Every feature's services call audit.services.record, so audit may only lean on core.
    assert set(imports()["audit"]) <= {BASE}
