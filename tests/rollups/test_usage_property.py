"""Property: for random events and any combination of the old and new `group_by` dimensions
and filters, the usage API's rows equal the raw events' sums exactly."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from pricing.models import ModelFamilyRule
from pricing.services import set_family_rule
from rollups.models import ROLLUP_MODELS
from rollups.services import roll_up_all_pending
from rollups.statuses import status_class
from tenants.scoping import TenantOwned
from tests.conftest import World

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
# (provider, reported model) -> (canonical model, family), written out by hand: the catalog's
# matching and the built-in rules as a reader expects them, not as the code computes them.
MODELS = {
    ("openai", "gpt-4o"): ("gpt-4o", "GPT-4o"),
    ("openai", "gpt-4o-2024-08-06"): ("gpt-4o", "GPT-4o"),
    ("openai", "gpt-4o-mini-2024-07-18"): ("gpt-4o-mini", "GPT-4o mini"),
    ("anthropic", "claude-3-5-sonnet-20241022"): ("claude-3-5-sonnet", "Claude 3.5"),
    ("anthropic", "claude-sonnet-4-20250514"): ("claude-sonnet-4-0", "Claude 4"),
    ("inhouse", "x-1"): ("x-1", "x-1"),
}
# The tenant's own rule, in the examples that set it: wins over "GPT-4o mini".
RULE = ("gpt-4o-mini", "Small OpenAI")
FEATURES = ["", "chat"]
ENDPOINTS = ["", "/v1/chat", "/v1/search"]
STATUS_CODES = [0, 200, 302, 404, 429, 500, 503]

events = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str),
        "timestamp": st.integers(0, 72).map(lambda h: (NOW - timedelta(hours=h)).isoformat()),
        "pair": st.sampled_from(sorted(MODELS)),
        "input_tokens": st.integers(0, 300_000),
        "output_tokens": st.integers(0, 50_000),
        "feature": st.sampled_from(FEATURES),
        "environment": st.sampled_from(["production", "staging"]),
        "endpoint": st.sampled_from(ENDPOINTS),
        "status_code": st.sampled_from(STATUS_CODES),
        "cost_usd": st.one_of(st.none(), st.decimals(0, 5, places=9).map(str)),
    }
)
GROUPS = ("team", "feature", "model", "model_name", "model_family", "provider", "environment",
          "endpoint", "status")  # fmt: skip
# Each filter's candidate values: some the events have, some they never have.
FILTER_VALUES: dict[str, list[str]] = {
    "team": ["search", "(unallocated)"],
    "feature": ["chat", "none-such"],
    "provider": ["openai", "anthropic"],
    "environment": ["production", "staging"],
    "endpoint": ["/v1/chat", "/v1/other"],
    "status": ["2xx", "429", "4xx", "5xx", "3xx", "other", "1xx"],
    "model": ["gpt-4o", "gpt-4o-mini", "x-1", "claude-3-5-sonnet"],
    "model_name": ["gpt-4o-2024-08-06", "gpt-4o"],
    "model_family": ["GPT-4o", "GPT-4o mini", "Small OpenAI", "Claude 4", "x-1", "Gemini 2.0"],
}
queries = st.tuples(
    st.lists(st.sampled_from(GROUPS), unique=True, max_size=3),
    st.dictionaries(st.sampled_from(sorted(FILTER_VALUES)), st.just(""), max_size=3).flatmap(
        lambda d: st.fixed_dictionaries({k: st.sampled_from(FILTER_VALUES[k]) for k in d})
    ),
    st.sampled_from(["hour", "day", "month"]),
)
SUMS = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "unpriced_requests")  # fmt: skip


def _dimensions(e: UsageEvent, with_rule: bool) -> dict[str, str]:
    canonical, family = MODELS[(e.provider, e.model)]
    if with_rule and canonical.startswith(RULE[0]):
        family = RULE[1]
    return {
        "team": "search" if e.team_id is not None else "(unallocated)",
        "feature": e.feature,
        "model": canonical,
        "model_name": e.model,
        "model_family": family,
        "provider": e.provider,
        "environment": e.environment,
        "endpoint": e.endpoint,
        "status": status_class(e.status_code),
    }


def _period(e: UsageEvent, granularity: str) -> str:
    hour = e.hour.astimezone(UTC)
    if granularity == "hour":
        return hour.isoformat()
    day = hour.date()
    return (day if granularity == "day" else date(day.year, day.month, 1)).isoformat()


def _expected(
    tenant: Any, group_by: list[str], filters: dict[str, str], granularity: str, rule: bool
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    out: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0] * len(SUMS) + [Decimal(0)])
    for e in UsageEvent.objects.for_tenant(tenant):
        dims = _dimensions(e, rule)
        if any(dims[name] != value for name, value in filters.items()):
            continue
        target = out[(_period(e, granularity), *(dims[g] for g in group_by))]
        unpriced = int(e.cost_source == "unpriced")
        adds = (1, int(e.status_code >= 400), e.input_tokens, e.output_tokens,
                e.cache_read_tokens, e.cache_write_tokens, unpriced)  # fmt: skip
        for i, value in enumerate(adds):
            target[i] += value
        target[-1] += e.cost_usd
    return {k: tuple(v) for k, v in out.items()}


def _answered(rows: list[dict[str, Any]], group_by: list[str]) -> dict[tuple[Any, ...], Any]:
    return {
        (r["period"], *(r[g] for g in group_by)): (
            *(r[s] for s in SUMS),
            Decimal(r["cost_usd"]),
        )
        for r in rows
    }


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(events, min_size=1, max_size=25),
    other=st.lists(events, max_size=5),
    rule=st.booleans(),
    asked=st.lists(queries, min_size=1, max_size=4),
)
def test_it_answers_every_grouping_and_filter_with_the_raw_sums(
    world: World,
    batch: list[dict[str, Any]],
    other: list[dict[str, Any]],
    rule: bool,
    asked: list[tuple[list[str], dict[str, str], str]],
) -> None:
    for tenant in (world.tenant, world.other_tenant):
        _reset(tenant)
    if rule:
        set_family_rule(world.tenant, *RULE)
    # The other tenant names every family after itself: none of it may show here.
    set_family_rule(world.other_tenant, "*", "Globex")
    ingest_events(world.ingest.key, [_event(e) for e in batch])
    ingest_events(world.other_ingest.key, [_event(e) for e in other])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)
    start = (NOW - timedelta(days=4)).date().replace(day=1)
    for group_by, filters, granularity in asked:
        if granularity == "hour":
            span = f"from={(NOW - timedelta(days=4)).date()}&to={(NOW + timedelta(days=1)).date()}"
        else:
            span = f"from={start}&to={(NOW + timedelta(days=1)).date()}"
        query = {"group_by": ",".join(group_by), "granularity": granularity, **filters}
        response = Client().get(f"/api/v1/usage?{span}", query, **world.read.auth)
        assert response.status_code == 200, response.content
        expected = _expected(world.tenant, group_by, filters, granularity, rule)
        assert _answered(response.json()["rows"], group_by) == expected, (group_by, filters)


def _event(e: dict[str, Any]) -> dict[str, Any]:
    provider, model = e["pair"]
    return {**{k: v for k, v in e.items() if k != "pair"}, "provider": provider, "model": model}


def _reset(tenant: Any) -> None:
    # Hypothesis reuses the function-scoped fixture across examples: start each one empty.
    owned: tuple[type[TenantOwned], ...] = (
        UsageEvent,
        PendingBatch,
        ModelFamilyRule,
        *ROLLUP_MODELS,
    )
    for model in owned:
        model.objects.for_tenant(tenant).delete()
