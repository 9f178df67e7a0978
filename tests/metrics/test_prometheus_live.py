"""A real Prometheus (Debian's) scrapes a live Costboard as deploy/ ships it: the scrape job
with its bearer token, every second, and deploy/alert-rules.yml; then the dashboard's queries.

Grafana's variables in deploy/grafana/dashboards/costboard.json are filled in as Grafana does
for a dashboard whose time range is this test's lifetime and whose data source scrapes every
second: `$tenant`/`$team` by their "All" value `.*` (the dashboard's default), then by one
tenant and team (`globex`, `search`); `$__interval` by the panel's own minimum interval (1d
for daily cost) or else the scrape interval; `$__rate_interval` by
max($__interval + scrape interval, 4 x scrape interval); `$__range` by the time range in
seconds. Range panels are asked through query_range (step 1 s), instant ones through query.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from budgets.services import set_budget
from pricing.catalog import TokenCounts, reference_cost
from tests import worker
from tests.conftest import KeyHolder, World, event
from tests.metrics.prometheus import SCRAPE_SECONDS, Prometheus, prometheus_server
from tests.metrics.prometheus import requires_prometheus as _requires_prometheus
from tests.server import ROOT, web_server

pytestmark = [
    _requires_prometheus,
    pytest.mark.django_db(transaction=True),
    pytest.mark.celery_worker,
    pytest.mark.slow,
]
TOKEN = "prometheus-scrape-token"
ACME_BUDGET = Decimal("10")  # each batch spends about 6 USD of it: 60 %, then 120 %
BUDGET_ALERT = "CostboardBudgetExceeded"
# Prometheus adds floats; the totals sent are Decimals of 12 places: a nanodollar of slack is
# a million times less than the cheapest token here (gpt-4o input, 0.0000025 USD).
NANODOLLAR = Decimal("1e-9")
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/costboard.json").read_text())


def _batch(prefix: str, at: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """acme's and globex's calls; both batches have the same label sets, so the second one
    is an increase of every series (rate() counts nothing in a series' first sample)."""
    stamp = at.isoformat()
    acme = [
        event(f"{prefix}-{i}", input_tokens=1234 + i, output_tokens=100_007, latency_ms=800)
        for i in range(6)
    ]
    acme.append(
        event(f"{prefix}-mini", model="gpt-4o-mini", cache_read_tokens=200, latency_ms=120,
              status_code=500)
    )  # fmt: skip
    globex = [
        event(f"{prefix}-g1", latency_ms=2500),
        event(f"{prefix}-g2", provider="anthropic", model="claude-3-5-haiku-latest",
              cache_write_tokens=100, latency_ms=300),
    ]  # fmt: skip
    for e in acme + globex:
        e["timestamp"] = stamp
    return acme, globex


def _cost(events: list[dict[str, Any]], at: datetime) -> Decimal:
    """What the calls cost by genai-prices' own calc_price: the total we expect back."""
    total = Decimal(0)
    for e in events:
        tokens = TokenCounts(
            e["input_tokens"], e["output_tokens"],
            e.get("cache_read_tokens", 0), e.get("cache_write_tokens", 0),
        )  # fmt: skip
        total += reference_cost(e["provider"], e["model"], tokens, at)
    return total


def _send(base: str, holder: KeyHolder, events: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {holder.token}"}
    answer = httpx.post(f"{base}/api/v1/events", json={"events": events}, headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == len(events)


def _only_value(prom: Prometheus, expr: str) -> Decimal | None:
    result = prom.query(expr)
    return Decimal(result[0]["value"][1]) if len(result) == 1 else None


def _wait_for_value(prom: Prometheus, expr: str, expected: Decimal, slack: Decimal) -> None:
    def seen() -> bool:
        value = _only_value(prom, expr)
        return value is not None and abs(value - expected) <= slack

    seen.__name__ = f"{expr} == {expected}"
    worker.wait_until(seen, timeout=30, every=0.25)


def _server_env() -> dict[str, str]:
    return {
        "DATABASE_URL": worker.test_database_url(),
        "METRICS_TOKEN": TOKEN,  # anonymous scrapes get 401: Prometheus must send the token
        "METRICS_CACHE_SECONDS": "0",  # below the 1 s scrape interval, as prometheus.yml asks
        "METRICS_DAILY_BUDGET_USD": "1000",  # far above the spend: those alerts stay silent
        "METRICS_LABELS": "tenant,team,provider,model",
        "ROLLUP_DEBOUNCE_SECONDS": "1",
    }


@pytest.fixture
def stack(world: World, tmp_path: Path) -> Iterator[tuple[str, Prometheus]]:
    """Costboard's web server and Celery worker on the test database, and Prometheus."""
    set_budget(world.tenant, amount=ACME_BUDGET)
    set_budget(world.other_tenant, amount=Decimal("100"), team=world.other_team)
    with (
        worker.celery_worker(),
        web_server(_server_env(), workers=1) as base,
        prometheus_server(base, TOKEN, tmp_path) as prom,
    ):
        yield base, prom


def test_it_gives_a_real_prometheus_exact_totals_alerts_and_dashboard_data(
    world: World, stack: tuple[str, Prometheus]
) -> None:
    base, prom = stack
    started = time.time()
    at = datetime.now(UTC) - timedelta(seconds=10)
    acme, globex = _batch("a", at)
    _send(base, world.ingest, acme)
    _send(base, world.other_ingest, globex)
    first = _cost(acme + globex, at)
    _wait_for_value(prom, "sum(costboard_cost_usd_total)", first, NANODOLLAR)
    # acme at 60 % of its budget, seen by Prometheus: the budget alert must stay silent.
    ratio = Decimal(repr(float(_cost(acme, at) / ACME_BUDGET)))
    _wait_for_value(prom, 'costboard_budget_spend_ratio{tenant="acme"}', ratio, Decimal(0))
    assert Decimal("0.5") < ratio < 1
    time.sleep(2 * SCRAPE_SECONDS)  # two more rule evaluations at 60 %

    second_sent = time.time()
    acme_2, globex_2 = _batch("b", at)
    _send(base, world.ingest, acme_2)
    _send(base, world.other_ingest, globex_2)
    total = first + _cost(acme_2 + globex_2, at)
    _wait_for_value(prom, "sum(costboard_cost_usd_total)", total, NANODOLLAR)
    _wait_for_value(prom, "sum(costboard_requests_total)", Decimal(18), Decimal(0))

    alert = worker.wait_until(
        lambda: prom.query(f'ALERTS{{alertname="{BUDGET_ALERT}"}}'), timeout=30
    )
    _assert_target_up_with_the_token(prom)
    _assert_every_rule_healthy(prom)
    _assert_every_dashboard_query_has_data(prom, started, lambda n: _more(base, world, n, at))
    _assert_budget_alert(prom, alert, started, second_sent)


def _assert_budget_alert(
    prom: Prometheus, alert: list[dict[str, Any]], started: float, second_sent: float
) -> None:
    (only,) = alert
    labels = only["metric"]
    assert labels["tenant"] == "acme" and labels["budget"] == "Whole tenant (monthly)"
    # The shipped rule as shipped: firing at once if it has no `for`, else pending first.
    (rule,) = [r for g in _rule_groups() for r in g["rules"] if r.get("alert") == BUDGET_ALERT]
    assert labels["alertstate"] in ({"firing"} if "for" not in rule else {"pending", "firing"})
    # Never active before acme's spend passed its limit, never for globex (at a few %).
    history = worker.wait_until(
        lambda: prom.query_range(f'ALERTS{{alertname="{BUDGET_ALERT}"}}', started, time.time())
    )  # a range query's last step may fall just before the first evaluation that fired
    assert {series["metric"]["tenant"] for series in history} == {"acme"}, history
    first_active = min(float(t) for series in history for t, _ in series["values"])
    assert first_active >= second_sent, (history, second_sent)
    # A healthy stack raises nothing else: no false alarm from the other rules.
    active = {series["metric"]["alertname"] for series in prom.query("ALERTS")}
    assert active == {BUDGET_ALERT}


def _assert_target_up_with_the_token(prom: Prometheus) -> None:
    (target,) = prom.get("targets", state="active")["activeTargets"]
    assert target["labels"]["job"] == "costboard"
    assert target["health"] == "up" and target["lastError"] == ""


def _rule_groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load((ROOT / "deploy/alert-rules.yml").read_text())["groups"])


def _assert_every_rule_healthy(prom: Prometheus) -> None:
    shipped = {r.get("alert") or r["record"] for g in _rule_groups() for r in g["rules"]}

    def evaluated() -> dict[str, dict[str, Any]]:
        loaded = {r["name"]: r for g in prom.get("rules")["groups"] for r in g["rules"]}
        return loaded if all(r["health"] != "unknown" for r in loaded.values()) else {}

    loaded = worker.wait_until(evaluated, timeout=10)
    assert set(loaded) == shipped
    unhealthy = {n: r.get("lastError") for n, r in loaded.items() if r["health"] != "ok"}
    assert unhealthy == {}


def _duration(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", text)
    assert match, f"not a Grafana interval: {text}"
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _grafana(expr: str, panel: dict[str, Any], choice: dict[str, str], range_s: int) -> str:
    """`expr` with the dashboard's variables filled in as Grafana does (module docstring)."""
    interval = _duration(panel.get("interval") or f"{SCRAPE_SECONDS}s")
    values = {
        **choice,
        "__interval": f"{interval}s",
        "__rate_interval": f"{max(interval + SCRAPE_SECONDS, 4 * SCRAPE_SECONDS)}s",
        "__range": f"{range_s}s",
    }
    return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], expr)


def _finite(values: list[Any]) -> bool:
    return any(math.isfinite(float(v)) for _, v in values)


def _has_data(prom: Prometheus, expr: str, instant: bool, start: float, end: float) -> bool:
    """At least one finite value: what a panel draws (NaN, e.g. a quantile of no calls, is
    drawn as nothing)."""
    if instant:
        return any(_finite([s["value"]]) for s in prom.query(expr))
    return any(_finite(s["values"]) for s in prom.query_range(expr, start, end))


def _more(base: str, world: World, n: int, at: datetime) -> None:
    acme, globex = _batch(f"more-{n}", at)
    _send(base, world.ingest, acme)
    _send(base, world.other_ingest, globex)


def _assert_every_dashboard_query_has_data(
    prom: Prometheus, started: float, more: Callable[[int], None]
) -> None:
    """Every panel draws something, for all tenants and for one tenant and team.

    A rate panel draws only where two scrapes within its 4 s window straddle an increase; on
    a loaded machine a scrape may time out (after the 1 s interval) just where the increase
    fell. So traffic goes on, as on a live dashboard: up to 4 more batches, each one more
    increase of every series, until every panel has drawn."""
    tenants = prom.get("label/tenant/values", **{"match[]": "costboard_cost_usd_total"})
    assert tenants == ["acme", "globex"]  # the $tenant variable's choices
    for attempt in range(5):
        empty = _empty_panels(prom, started)
        if not empty or attempt == 4:
            break
        more(attempt)
        time.sleep(4 * SCRAPE_SECONDS)
    assert empty == []


def _empty_panels(prom: Prometheus, started: float) -> list[tuple[dict[str, str], str, str]]:
    end, empty = time.time(), []
    for choice in ({"tenant": ".*", "team": ".*"}, {"tenant": "globex", "team": "search"}):
        match = f'costboard_cost_usd_total{{tenant=~"{choice["tenant"]}"}}'
        assert "search" in prom.get("label/team/values", **{"match[]": match})  # $team's
        empty += [
            (choice, panel["title"], expr)
            for panel in DASHBOARD["panels"]
            for target in panel["targets"]
            if not _has_data(
                prom,
                expr := _grafana(target["expr"], panel, choice, math.ceil(end - started)),
                bool(target.get("instant")),
                started,
                end,
            )
        ]
    return empty
