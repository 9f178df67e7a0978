from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.test import Client
from prometheus_client import generate_latest

from core.teams import UNALLOCATED
from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from metrics.collector import COSTBOARD_REGISTRY, render_text
from rollups.models import HourlyRollup
from rollups.services import MAX_ATTEMPTS, retry_quarantined, roll_up_all_pending, roll_up_isolated
from tests.conftest import World, event
from tests.metrics.helpers import (
    assert_money,
    costboard_lines,
    parse,
    pick,
    raw_costs,
    requires_promtool,
    scrape,
    seed,
    value,
)
from tests.rollups.poison import poisoned_batch
from tests.server import ROOT

SEARCH_GPT4O = {"tenant": "acme", "team": "search", "provider": "openai", "model": "gpt-4o"}


def test_it_reports_each_tenant_teams_spend_exactly(world: World) -> None:
    seed(world)
    series = parse(scrape())
    costs = pick(series, "costboard_cost_usd_total")
    expected = raw_costs()
    assert {
        tuple(dict(k)[n] for n in ("tenant", "team", "provider", "model")) for k in costs
    } == set(expected)
    for (tenant, team, provider, model), cost in expected.items():
        labels = {"tenant": tenant, "team": team, "provider": provider, "model": model}
        assert_money(value(series, "costboard_cost_usd_total", **labels), cost)
    assert ("acme", UNALLOCATED, "anthropic", "claude-3-5-haiku-latest") in expected


def test_it_matches_the_hourly_rollups_over_all_time(world: World) -> None:
    seed(world)
    series = parse(scrape())
    # Every tenant's rows: the operator's grand total.
    hourly = HourlyRollup.unscoped_all_tenants.aggregate(cost=Sum("cost_usd"), n=Sum("requests"))
    assert_money(sum(pick(series, "costboard_cost_usd_total").values()), hourly["cost"])
    assert sum(pick(series, "costboard_requests_total").values()) == hourly["n"] == 6


def test_it_counts_tokens_by_type_and_requests_by_status_class(world: World) -> None:
    seed(world)
    series = parse(scrape())
    tokens = {
        kind: value(series, "costboard_tokens_total", **SEARCH_GPT4O, type=kind)
        for kind in ("input", "output", "cache_read", "cache_write")
    }
    assert tokens == {"input": 3000, "output": 1500, "cache_read": 0, "cache_write": 0}
    mini = {**SEARCH_GPT4O, "model": "gpt-4o-mini"}
    assert value(series, "costboard_tokens_total", **mini, type="cache_read") == 200
    claude = {**SEARCH_GPT4O, "team": UNALLOCATED, "provider": "anthropic"}
    claude["model"] = "claude-3-5-haiku-latest"
    assert value(series, "costboard_tokens_total", **claude, type="cache_write") == 100
    assert value(series, "costboard_requests_total", **SEARCH_GPT4O, status_class="ok") == 2
    assert value(series, "costboard_requests_total", **SEARCH_GPT4O, status_class="error") == 1


def test_it_builds_the_latency_histogram_in_seconds(world: World) -> None:
    seed(world)
    series = parse(scrape())
    buckets = {
        dict(k)["le"]: v
        for k, v in pick(series, "costboard_request_latency_seconds_bucket", **SEARCH_GPT4O).items()
    }
    # The seed's buckets (10 ms .. 2 s) and the rollups' longer ones, cumulative.
    assert buckets == {
        "0.01": 0, "0.05": 1, "0.1": 1, "0.25": 1, "0.5": 2, "1.0": 2, "2.0": 2, "5.0": 2,
        "10.0": 2, "30.0": 2, "60.0": 2, "+Inf": 2,
    }  # fmt: skip
    assert value(series, "costboard_request_latency_seconds_count", **SEARCH_GPT4O) == 2
    assert value(series, "costboard_request_latency_seconds_sum", **SEARCH_GPT4O) == 0.34
    mini = {**SEARCH_GPT4O, "model": "gpt-4o-mini"}
    assert value(series, "costboard_request_latency_seconds_bucket", **mini, le="5.0") == 0
    assert value(series, "costboard_request_latency_seconds_bucket", **mini, le="10.0") == 1


def test_it_builds_the_tokens_per_request_histogram(world: World) -> None:
    calls = [
        event("a", model="tiny", input_tokens=60, output_tokens=40),  # 100: the first bucket
        event("b", model="tiny", input_tokens=60, output_tokens=41),
        event("c", model="tiny", input_tokens=9000, output_tokens=1000),
        event("d", model="tiny", input_tokens=20_000, output_tokens=0),  # above 10k: +Inf only
    ]
    ingest_events(world.ingest.key, calls)
    roll_up_all_pending(world.tenant.pk)
    tiny = {**SEARCH_GPT4O, "model": "tiny"}
    series = parse(scrape())
    buckets = {
        dict(k)["le"]: v
        for k, v in pick(series, "costboard_tokens_per_request_bucket", **tiny).items()
    }
    assert buckets == {
        "100.0": 1, "250.0": 2, "500.0": 2, "1000.0": 2, "2000.0": 2, "5000.0": 2,
        "10000.0": 3, "+Inf": 4,
    }  # fmt: skip
    assert value(series, "costboard_tokens_per_request_count", **tiny) == 4
    assert value(series, "costboard_tokens_per_request_sum", **tiny) == 100 + 101 + 10_000 + 20_000


def test_it_counts_ingest_results_per_tenant(world: World) -> None:
    seed(world)
    series = parse(scrape())
    acme = {r: value(series, "costboard_ingest_events_total", tenant="acme", result=r) for r in (
        "accepted", "duplicate", "rejected")}  # fmt: skip
    assert acme == {"accepted": 5, "duplicate": 1, "rejected": 1}
    assert value(series, "costboard_ingest_events_total", tenant="globex", result="accepted") == 1


def test_it_reports_the_rollup_lag(world: World) -> None:
    seed(world)
    assert value(parse(scrape()), "costboard_rollup_lag_seconds") == 0
    ingest_events(world.ingest.key, [event("late")])
    PendingBatch.objects.for_tenant(world.tenant).update(
        created_at=datetime.now(UTC) - timedelta(seconds=90)
    )
    assert 89 < value(parse(scrape()), "costboard_rollup_lag_seconds") < 120


def test_it_labels_series_with_the_configured_labels(world: World, settings: Any) -> None:
    seed(world)
    settings.METRICS_LABELS = ["tenant", "feature"]
    series = parse(scrape())
    assert {frozenset(dict(k)) for k in pick(series, "costboard_cost_usd_total")} == {
        frozenset({"tenant", "feature"})
    }
    assert (
        value(series, "costboard_requests_total", tenant="acme", feature="chat", status_class="ok")
        == 1
    )

    # Without "tenant", the two tenants' gpt-4o usage is one series, and ingest is one total.
    settings.METRICS_LABELS = ["model"]
    series = parse(scrape())
    gpt4o = sum(cost for (_, _, _, model), cost in raw_costs().items() if model == "gpt-4o")
    assert_money(value(series, "costboard_cost_usd_total", model="gpt-4o"), gpt4o)
    assert value(series, "costboard_requests_total", model="gpt-4o", status_class="ok") == 3
    assert value(series, "costboard_ingest_events_total", result="accepted") == 6


@pytest.mark.parametrize(
    ("name", "bad"),
    [("METRICS_LABELS", "tenant,colour"), ("METRICS_DAILY_BUDGET_USD", "lots")],
)
def test_it_refuses_to_start_with_a_bad_metrics_setting(name: str, bad: str) -> None:
    env = {**os.environ, "SECRET_KEY": "test-only-secret-key", name: bad}
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert name in proc.stderr


def _uncapped_and_capped(settings: Any, cap: int) -> tuple[Any, Any]:
    settings.METRICS_MAX_SERIES = 2000
    full = parse(scrape())
    settings.METRICS_MAX_SERIES = cap
    return full, parse(scrape())


def test_it_caps_label_sets_and_sums_the_rest_under_other(world: World, settings: Any) -> None:
    seed(world)
    full, capped = _uncapped_and_capped(settings, cap=2)
    costs = pick(capped, "costboard_cost_usd_total")
    assert len(pick(full, "costboard_cost_usd_total")) == 4
    assert len(costs) == 3  # the cap plus "other"
    other = frozenset(
        {"tenant": "other", "team": "other", "provider": "other", "model": "other"}.items()
    )
    biggest = sorted(pick(full, "costboard_cost_usd_total").items(), key=lambda kv: -kv[1])[:2]
    assert set(costs) == {k for k, _ in biggest} | {other}
    assert value(capped, "costboard_metrics_label_sets") == 4
    for name in (
        "costboard_cost_usd_total",
        "costboard_tokens_total",
        "costboard_requests_total",
        "costboard_request_latency_seconds_count",
        "costboard_request_latency_seconds_sum",
        "costboard_request_latency_seconds_bucket",
        "costboard_tokens_per_request_bucket",
        "costboard_tokens_per_request_sum",
    ):
        assert sum(pick(capped, name).values()) == pytest.approx(sum(pick(full, name).values()))
        assert len({k for k in pick(capped, name)}) == len(pick(capped, name))


def test_it_never_repeats_a_real_series_named_other(world: World, settings: Any) -> None:
    seed(world)
    ingest_events(world.ingest.key, [event("o", model="other")])
    roll_up_all_pending(world.tenant.pk)
    settings.METRICS_LABELS = ["model"]
    full, capped = _uncapped_and_capped(settings, cap=1)
    assert len(pick(full, "costboard_cost_usd_total")) == 4  # gpt-4o, -mini, claude, other
    body = scrape()
    lines = [line for line in costboard_lines(body) if line.startswith("costboard_cost_usd_total")]
    assert len(lines) == len(set(line.split(" ")[0] for line in lines)) == 2
    assert sum(pick(capped, "costboard_cost_usd_total").values()) == pytest.approx(
        sum(pick(full, "costboard_cost_usd_total").values())
    )


def test_it_requires_the_metrics_token_when_set(db: Any, settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret-token"
    settings.METRICS_PUBLIC = False
    client = Client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert b"costboard_" not in response.content
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert "costboard_rollup_lag_seconds" in scrape(client, token="s3cret-token")


def test_it_serves_a_warm_scrape_from_its_cache(
    world: World, settings: Any, django_assert_num_queries: Any
) -> None:
    seed(world)
    settings.METRICS_CACHE_SECONDS = 60
    before = costboard_lines(scrape())
    ingest_events(world.ingest.key, [event("more")])
    roll_up_all_pending(world.tenant.pk)
    with django_assert_num_queries(0):
        assert costboard_lines(scrape()) == before  # no database work for a warm scrape
    settings.METRICS_CACHE_SECONDS = 0
    assert costboard_lines(scrape()) != before


def test_it_serves_what_the_beat_task_last_rendered(world: World, settings: Any) -> None:
    from metrics.tasks import refresh_metrics

    seed(world)
    settings.METRICS_CACHE_SECONDS = 60
    before = costboard_lines(scrape())
    ingest_events(world.ingest.key, [event("more")])
    roll_up_all_pending(world.tenant.pk)
    assert costboard_lines(scrape()) == before
    refresh_metrics()  # what beat runs every 5 s: every web process now serves the new totals
    after = costboard_lines(scrape())
    assert after != before
    assert costboard_lines(scrape()) == after


def test_it_exposes_the_daily_budget_only_when_set(db: Any, settings: Any) -> None:
    assert "costboard_daily_budget_usd" not in scrape()
    settings.METRICS_DAILY_BUDGET_USD = "250.50"
    assert value(parse(scrape()), "costboard_daily_budget_usd") == 250.5


def test_it_includes_django_request_and_database_metrics(world: World) -> None:
    seed(world)
    Client().get("/healthz")
    series = parse(scrape())
    assert pick(series, "django_http_requests_total_by_method_total", method="GET")
    assert sum(pick(series, "django_db_execute_total").values()) > 0


@requires_promtool
def test_it_passes_promtool_check_metrics(world: World, settings: Any) -> None:
    seed(world)
    settings.METRICS_DAILY_BUDGET_USD = "100"
    settings.METRICS_MAX_SERIES = 2  # "other" included
    body = scrape()
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""  # not even a lint warning
    assert "costboard_cost_usd_total{" in body


def test_it_keeps_money_decimal_until_the_exposition(world: World) -> None:
    seed(world)
    from metrics.selectors import usage_by_labels

    usage = usage_by_labels(["tenant"])
    assert isinstance(usage[("acme",)].cost_usd, Decimal)


def test_it_renders_exactly_what_prometheus_client_renders(world: World, settings: Any) -> None:
    seed(world)
    awkward = 'say "hi" \\ to\nme'  # quote, backslash and newline must be escaped
    ingest_events(world.ingest.key, [event("odd", feature=awkward, model="m\\1")])
    roll_up_all_pending(world.tenant.pk)
    settings.METRICS_LABELS = ["tenant", "feature", "model"]
    settings.METRICS_DAILY_BUDGET_USD = "12.5"
    ours = render_text(COSTBOARD_REGISTRY.collect())
    assert ours == generate_latest(COSTBOARD_REGISTRY)
    assert 'feature="say \\"hi\\" \\\\ to\\nme"' in ours.decode()
    series = parse(ours.decode())
    assert (
        value(
            series,
            "costboard_requests_total",
            tenant="acme",
            feature=awkward,
            model="m\\1",
            status_class="ok",
        )
        == 1
    )


def test_it_reports_each_budgets_spend_ratio(world: World) -> None:
    from budgets.services import evaluate_and_alert, set_budget

    seed(world)
    budget, _ = set_budget(world.tenant, amount=Decimal("0.02"), team=world.team)
    evaluate_and_alert(budget, fire=False)
    spent = sum(
        e.cost_usd for e in UsageEvent.objects.for_tenant(world.tenant).filter(team=world.team)
    )
    ratio = value(
        parse(scrape()),
        "costboard_budget_spend_ratio",
        tenant="acme",
        team="search",
        budget="Search (monthly)",
    )
    assert ratio == pytest.approx(float(spent / Decimal("0.02")))
    assert ratio > 1  # over budget, as the burn alert will see it


def test_it_counts_refused_rollups_and_quarantined_batches_per_tenant(
    world: World, settings: Any
) -> None:
    seed(world)
    bad = poisoned_batch(world.ingest, "bad")
    for _ in range(MAX_ATTEMPTS):
        roll_up_isolated(world.tenant.pk)
    series = parse(scrape())
    assert value(series, "costboard_rollup_failures_total", tenant="acme") == MAX_ATTEMPTS
    assert value(series, "costboard_rollup_quarantined_batches", tenant="acme") == 1
    assert value(series, "costboard_rollup_quarantined_batches", tenant="globex") == 0
    assert ("costboard_rollup_failures_total", frozenset({("tenant", "globex")})) not in series

    settings.METRICS_LABELS = ["team"]
    retry_quarantined(bad)
    series = parse(scrape())
    assert value(series, "costboard_rollup_failures_total") == MAX_ATTEMPTS
    assert value(series, "costboard_rollup_quarantined_batches") == 0
