"""METRICS_LABELS with endpoint, status and model_family: sums equal to the raw events', each
tenant's own family rules, the series cap, and output promtool accepts."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from ingest.models import UsageEvent
from ingest.services import ingest_events
from metrics.conf import metrics_settings
from pricing.families import ModelNames
from pricing.services import set_family_rule
from rollups.services import roll_up_all_pending
from rollups.statuses import status_class
from rollups.tags import set_tag_dimensions
from tests.conftest import World, event
from tests.metrics.helpers import assert_money, parse, pick, requires_promtool, scrape, value

ODD_ENDPOINT = '/v1/say "hi"\\now\n'  # a quote, a backslash and a newline to escape


def _seed(world: World) -> None:
    calls = [
        event(1, endpoint="/v1/chat", status_code=200),
        event(2, endpoint="/v1/chat", status_code=429, model="gpt-4o-mini"),
        event(3, endpoint="/v1/search", status_code=503, model="gpt-4o-2024-08-06"),
        event(4, endpoint=ODD_ENDPOINT, status_code=404),
        event(5, provider="anthropic", model="claude-3-5-haiku-latest", status_code=200),
    ]
    ingest_events(world.ingest.key, calls)
    ingest_events(world.other_ingest.key, [event(9, endpoint="/v1/globex", status_code=500)])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def _raw(label: Callable[[UsageEvent], str]) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for e in UsageEvent.unscoped_all_tenants.select_related("tenant"):  # every tenant: a test
        out[(e.tenant.slug, label(e))] += e.cost_usd
    return dict(out)


def _assert_costs(settings: Any, label: str, raw: dict[tuple[str, str], Decimal]) -> None:
    settings.METRICS_LABELS = ["tenant", label]
    series = parse(scrape())
    assert len(pick(series, "costboard_cost_usd_total")) == len(raw)
    for (tenant, shown), cost in raw.items():
        labels = {"tenant": tenant, label: shown}
        assert_money(value(series, "costboard_cost_usd_total", **labels), cost)


def test_it_labels_spend_by_endpoint_and_status_as_the_raw_events_sum(
    world: World, settings: Any
) -> None:
    _seed(world)
    _assert_costs(settings, "endpoint", _raw(lambda e: e.endpoint))
    _assert_costs(settings, "status", _raw(lambda e: status_class(e.status_code)))
    series = parse(scrape())
    assert (
        value(series, "costboard_requests_total", tenant="acme", status="429", status_class="error")
        == 1
    )


def test_it_labels_spend_by_each_tenants_model_family(world: World, settings: Any) -> None:
    set_family_rule(world.tenant, "gpt-4o*", "Acme GPT")  # acme's rule only
    _seed(world)
    names = {
        world.tenant.slug: ModelNames.of(world.tenant),
        "globex": ModelNames.of(world.other_tenant),
    }
    raw = _raw(lambda e: names[e.tenant.slug].family(e.provider, e.model))
    assert raw[("acme", "Acme GPT")] > 0 and ("globex", "Acme GPT") not in raw
    _assert_costs(settings, "model_family", raw)
    # Three gpt-4o models of acme are one series, summed.
    settings.METRICS_LABELS = ["model_family"]
    series = parse(scrape())
    assert (
        value(series, "costboard_requests_total", model_family="Acme GPT", status_class="ok") == 1
    )
    assert (
        value(series, "costboard_requests_total", model_family="Acme GPT", status_class="error")
        == 3
    )


def test_it_keeps_a_tenants_scrape_to_its_own_endpoints(world: World, settings: Any) -> None:
    _seed(world)
    settings.METRICS_LABELS = ["endpoint"]
    body = scrape(token=world.other_read.token)
    assert "/v1/globex" in body and "/v1/chat" not in body and "/v1/search" not in body


def test_it_caps_the_new_labels_series_with_exact_totals(world: World, settings: Any) -> None:
    _seed(world)
    settings.METRICS_LABELS = ["endpoint", "status", "model_family"]
    full = parse(scrape())
    settings.METRICS_MAX_SERIES = 2
    capped = parse(scrape())
    assert len(pick(full, "costboard_cost_usd_total")) == 6
    assert len(pick(capped, "costboard_cost_usd_total")) == 3  # two kept, plus "other"
    assert pick(capped, "costboard_cost_usd_total", endpoint="other", status="other")
    assert sum(pick(capped, "costboard_cost_usd_total").values()) == pytest.approx(
        sum(pick(full, "costboard_cost_usd_total").values())
    )


@requires_promtool
def test_it_passes_promtool_with_the_new_labels(world: World, settings: Any) -> None:
    set_tag_dimensions(world.tenant, ["customer_tier"])  # before the calls: no re-roll needed
    _seed(world)
    ingest_events(world.ingest.key, [event("q", tags={"customer_tier": 'a "b"\\c'})])
    roll_up_all_pending(world.tenant.pk)
    settings.METRICS_LABELS = ["tenant", "endpoint", "status", "model_family", "tag_customer_tier"]
    body = scrape()
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""
    assert 'endpoint="/v1/say \\"hi\\"\\\\now\\n"' in body  # escaped as the format asks
    series = parse(body)
    assert pick(series, "costboard_cost_usd_total", endpoint=ODD_ENDPOINT, status="4xx")
    assert pick(series, "costboard_cost_usd_total", tag_customer_tier='a "b"\\c')


def _seed_tags(world: World) -> None:
    set_tag_dimensions(world.tenant, ["customer_tier"])
    set_tag_dimensions(world.other_tenant, ["customer_tier"])
    tiers = ["free", "pro", "pro", None, "enterprise"]
    calls = [
        event(f"t{i}", tags={"customer_tier": t} if t else {}, output_tokens=1000 * (i + 1))
        for i, t in enumerate(tiers)
    ]
    ingest_events(world.ingest.key, calls)
    ingest_events(world.other_ingest.key, [event("g", tags={"customer_tier": "globex-secret"})])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def test_it_labels_spend_by_a_chosen_tag_key_as_the_raw_events_sum(
    world: World, settings: Any
) -> None:
    _seed_tags(world)
    raw = _raw(lambda e: e.tags.get("customer_tier") or "(none)")
    assert raw[("acme", "(none)")] > 0
    _assert_costs(settings, "tag_customer_tier", raw)
    settings.METRICS_LABELS = ["tag_customer_tier"]
    series = parse(scrape())
    assert (
        value(series, "costboard_requests_total", tag_customer_tier="pro", status_class="ok") == 2
    )


def test_it_never_shows_another_tenants_tag_values(world: World, settings: Any) -> None:
    _seed_tags(world)
    settings.METRICS_LABELS = ["tag_customer_tier"]
    mine = scrape(token=world.read.token)
    assert 'tag_customer_tier="pro"' in mine and "globex-secret" not in mine
    theirs = scrape(token=world.other_read.token)
    assert "globex-secret" in theirs and 'tag_customer_tier="pro"' not in theirs


def test_it_leaves_out_tenants_that_did_not_choose_the_tag_key(world: World, settings: Any) -> None:
    _seed_tags(world)
    set_tag_dimensions(world.other_tenant, [])
    settings.METRICS_LABELS = ["tenant", "tag_customer_tier"]
    series = parse(scrape())
    assert {dict(k)["tenant"] for k in pick(series, "costboard_cost_usd_total")} == {"acme"}


def test_it_caps_tag_series_with_exact_totals(world: World, settings: Any) -> None:
    _seed_tags(world)
    settings.METRICS_LABELS = ["tag_customer_tier"]
    full = parse(scrape())
    settings.METRICS_MAX_SERIES = 2
    capped = parse(scrape())
    assert len(pick(full, "costboard_cost_usd_total")) == 5  # 3 tiers, (none), globex-secret
    assert len(pick(capped, "costboard_cost_usd_total")) == 3
    assert pick(capped, "costboard_cost_usd_total", tag_customer_tier="other")
    assert sum(pick(capped, "costboard_cost_usd_total").values()) == pytest.approx(
        sum(pick(full, "costboard_cost_usd_total").values())
    )


@pytest.mark.parametrize(
    "labels", [["tag_a", "tag_b"], ["tag_customer-tier"], ["tag_"], ["colour"]]
)
def test_it_refuses_labels_it_cannot_serve(labels: list[str], settings: Any) -> None:
    settings.METRICS_LABELS = labels
    with pytest.raises(ImproperlyConfigured, match="METRICS_LABELS"):
        metrics_settings()


@pytest.mark.parametrize(
    "labels",
    [
        ["tenant", "tag_customer_tier"],  # read from the tag slices summed over environments
        ["team", "environment", "tag_customer_tier"],  # the team slice, per environment
        ["tenant", "endpoint", "status", "tag_customer_tier"],  # no slice: the full rollups
    ],
)
def test_it_sums_a_tag_label_the_same_from_slices_or_full_rollups(
    world: World, settings: Any, labels: list[str]
) -> None:
    _seed_tags(world)
    raw: dict[str, Decimal] = defaultdict(Decimal)
    for e in UsageEvent.unscoped_all_tenants.all():
        raw[e.tags.get("customer_tier") or "(none)"] += e.cost_usd
    settings.METRICS_LABELS = labels
    found: dict[str, Decimal] = defaultdict(Decimal)
    for labelled, sample in pick(parse(scrape()), "costboard_cost_usd_total").items():
        found[dict(labelled)["tag_customer_tier"]] += Decimal(repr(sample))
    assert set(found) == set(raw)
    for tier, cost in raw.items():
        assert abs(found[tier] - cost) < Decimal("1e-9"), tier
