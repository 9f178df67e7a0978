"""The costboard_* metric families: a prometheus_client Collector over the rollups.

Why the numbers stay true across processes and restarts: nothing is counted in memory. Each
scrape (or the cached result of a recent one) reads all-time sums from the database, so every
web worker reports the same totals, and they only go up as the rollups grow.

Why the cache cannot make a counter go down: a process reuses a computed scrape for at most
METRICS_CACHE_SECONDS from the moment it started reading. While that is shorter than
Prometheus's scrape interval, a value served at one scrape was read after the previous scrape,
whichever worker answers, so it is never older than a value Prometheus has already seen.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from django.core.cache import cache
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from core import replica
from metrics import selectors
from metrics.conf import MetricsSettings, metrics_settings
from metrics.selectors import IngestTotals, Labels, Usage
from rollups.models import LATENCY_BOUNDS_MS, TOKENS_BOUNDS
from rollups.services import rollup_lag_seconds

OTHER = "other"
# Rollup bounds are in ms; Prometheus wants seconds. The last rollup bucket is "above 60 s".
LATENCY_LE = (*(floatToGoString(ms / 1000) for ms in LATENCY_BOUNDS_MS), "+Inf")
TOKENS_LE = (*(floatToGoString(n) for n in TOKENS_BOUNDS), "+Inf")
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")
T = TypeVar("T", Usage, IngestTotals)


@dataclass
class Families:
    """One object per family; empty ones describe the collector without touching the DB."""

    labels: tuple[str, ...]
    cost: CounterMetricFamily = field(init=False)
    tokens: CounterMetricFamily = field(init=False)
    requests: CounterMetricFamily = field(init=False)
    latency: HistogramMetricFamily = field(init=False)
    tokens_per_request: HistogramMetricFamily = field(init=False)
    ingest: CounterMetricFamily = field(init=False)
    lag: GaugeMetricFamily = field(init=False)
    rollup_failures: CounterMetricFamily = field(init=False)
    quarantined: GaugeMetricFamily = field(init=False)
    label_sets: GaugeMetricFamily = field(init=False)
    budget: GaugeMetricFamily = field(init=False)
    budget_ratio: GaugeMetricFamily = field(init=False)

    def __post_init__(self) -> None:
        names = list(self.labels)
        ingest_labels = ["tenant"] if "tenant" in names else []
        self.cost = CounterMetricFamily(
            "costboard_cost_usd", "LLM spend in USD, all time.", labels=names
        )
        self.tokens = CounterMetricFamily(
            "costboard_tokens",
            "Tokens by type, all time; cache_read and cache_write are parts of input.",
            labels=[*names, "type"],
        )
        self.requests = CounterMetricFamily(
            "costboard_requests",
            'LLM calls, all time; status_class "error" is status_code >= 400, "ok" the rest.',
            labels=[*names, "status_class"],
        )
        self.latency = HistogramMetricFamily(
            "costboard_request_latency_seconds",
            "LLM call latency as reported by the client (calls without latency_ms excluded).",
            labels=names,
        )
        self.tokens_per_request = HistogramMetricFamily(
            "costboard_tokens_per_request",
            "Input + output tokens of each LLM call.",
            labels=names,
        )
        self.ingest = CounterMetricFamily(
            "costboard_ingest_events",
            "Events offered to ingest, all time, by result (counted when rolled up).",
            labels=[*ingest_labels, "result"],
        )
        self.lag = GaugeMetricFamily(
            "costboard_rollup_lag_seconds", "Age of the oldest stored event not yet rolled up."
        )
        self.rollup_failures = CounterMetricFamily(
            "costboard_rollup_failures",
            "Rollup runs that failed and batch merges the database refused (see /readyz).",
            labels=ingest_labels,
        )
        self.quarantined = GaugeMetricFamily(
            "costboard_rollup_quarantined_batches",
            "Batches refused too often, out of the rollups (manage.py rollup_quarantine list).",
            labels=ingest_labels,
        )
        self.label_sets = GaugeMetricFamily(
            "costboard_metrics_label_sets",
            "Distinct usage label sets before METRICS_MAX_SERIES; above it the rest is 'other'.",
        )
        self.budget = GaugeMetricFamily(
            "costboard_daily_budget_usd",
            "Operator-wide daily budget (METRICS_DAILY_BUDGET_USD), for the alert rules.",
        )
        self.budget_ratio = GaugeMetricFamily(
            "costboard_budget_spend_ratio",
            "Spend / limit of each Costboard budget in its current period (1 = at the limit).",
            labels=["tenant", "team", "budget"],
        )

    def all(self) -> list[Metric]:
        return [
            self.cost,
            self.tokens,
            self.requests,
            self.latency,
            self.tokens_per_request,
            self.ingest,
            self.lag,
            self.rollup_failures,
            self.quarantined,
            self.label_sets,
            self.budget,
            self.budget_ratio,
        ]


def capped(
    rows: dict[Labels, T], limit: int, rank: Callable[[T], Any], other: Labels
) -> list[tuple[Labels, T]]:
    """At most `limit` label sets by `rank` (biggest first) plus `other`, holding the rest.

    Totals stay exact: every dropped set is added into `other`. Sorted by labels, so every
    process renders identical output.
    """
    rows = dict(rows)
    real_other = rows.pop(other, None)  # a real set named like ours must not be duplicated
    if len(rows) + (real_other is not None) <= limit:
        kept = rows if real_other is None else {**rows, other: real_other}
        return sorted(kept.items())
    # Ties broken by the labels, so every process keeps the same sets.
    ranked: list[tuple[Labels, T]] = sorted(rows.items(), key=lambda kv: (rank(kv[1]), kv[0]))
    rest: list[T] = [value for _, value in ranked[limit:]]
    if real_other is not None:
        rest.append(real_other)
    total: T = replace(rest[0])  # a copy: the caller's rows stay as they were
    for value in rest[1:]:
        total.add(value)
    top = sorted(ranked[:limit])
    top.append((other, total))
    return top


def _usage_rank(usage: Usage) -> tuple[Any, ...]:
    return (-usage.cost_usd, -usage.requests)


def _cumulative(bounds: tuple[str, ...], counts: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts -> Prometheus's cumulative (le, count) pairs, ending with +Inf."""
    running, buckets = 0, list[tuple[str, float]]()
    for le, count in zip(bounds, counts, strict=True):
        running += count
        buckets.append((le, running))
    return buckets


def _add_usage(f: Families, labels: Labels, u: Usage) -> None:
    values = list(labels)
    f.cost.add_metric(values, float(u.cost_usd))  # Decimal until here: floats only on the wire
    for kind, count in zip(TOKEN_TYPES, u.tokens, strict=True):
        f.tokens.add_metric([*values, kind], count)
    f.requests.add_metric([*values, "ok"], u.requests - u.errors)
    f.requests.add_metric([*values, "error"], u.errors)
    f.latency.add_metric(
        values, _cumulative(LATENCY_LE, u.latency_buckets), u.latency_sum_ms / 1000
    )
    # _count is the +Inf bucket (calls bucketed); _sum all their tokens. Rollup rows written
    # before the tok_* columns existed add tokens but no bucket counts: rate(_sum)/rate(_count)
    # is exact for everything rolled up since.
    per_request = _cumulative(TOKENS_LE, u.tokens_buckets)
    f.tokens_per_request.add_metric(values, per_request, u.tokens[0] + u.tokens[1])


def _add_ingest(f: Families, conf: MetricsSettings, tenant: int | None) -> None:
    by_tenant = "tenant" in conf.labels
    rows = selectors.ingest_by_labels(by_tenant, tenant)
    other = (OTHER,) if by_tenant else ()
    for labels, totals in capped(rows, conf.max_series, lambda t: -t.total, other):
        f.ingest.add_metric([*labels, "accepted"], totals.accepted)
        f.ingest.add_metric([*labels, "duplicate"], totals.duplicates)
        f.ingest.add_metric([*labels, "rejected"], totals.rejected)


def build_families(conf: MetricsSettings, tenant: int | None = None) -> list[Metric]:
    """Every tenant's families (the operator's scrape), or those of one `tenant`: then every
    query reads that tenant's rows only, and the operator-wide daily budget is left out."""
    f = Families(conf.labels)
    usage = selectors.usage_by_labels(conf.labels, tenant)
    other = tuple(OTHER for _ in conf.labels)
    for labels, totals in capped(usage, conf.max_series, _usage_rank, other):
        _add_usage(f, labels, totals)
    f.label_sets.add_metric([], len(usage))
    _add_ingest(f, conf, tenant)
    f.lag.add_metric([], rollup_lag_seconds(tenant))
    by_tenant = "tenant" in conf.labels
    for labels, count in selectors.rollup_failures(by_tenant, tenant).items():
        f.rollup_failures.add_metric(list(labels), count)
    for labels, count in selectors.quarantined_batches(by_tenant, tenant).items():
        f.quarantined.add_metric(list(labels), count)
    for labels, ratio in selectors.budget_ratios(tenant):
        f.budget_ratio.add_metric(list(labels), ratio)
    families = f.all()
    if conf.daily_budget_usd is None or tenant is not None:
        # No budget configured: no series, so no budget alert fires. The operator's budget
        # spans every tenant: not a tenant's business.
        families.remove(f.budget)
    else:
        f.budget.add_metric([], float(conf.daily_budget_usd))
    if replica.configured():
        families.append(replica_lag())
    return families


def replica_lag() -> GaugeMetricFamily:
    # +Inf when the lag is unknown (replica down): an alert on "lag > N" then fires too.
    lag = replica.state().lag_seconds
    return GaugeMetricFamily(
        "costboard_replica_lag_seconds",
        "How far the read replica trails the primary; +Inf when it cannot be reached.",
        value=math.inf if lag is None else lag,
    )


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_text(families: Iterable[Metric]) -> bytes:
    """Text format 0.0.4, byte for byte what prometheus_client.generate_latest writes for our
    families (a test holds it to that), about 3x faster: generate_latest re-validates every
    label name of every sample; ours are fixed, and each label value is escaped once here.
    Rendering is a third of a cold scrape with 10k series.
    """
    out: list[str] = []
    escaped: dict[str, str] = {}

    def esc(value: str) -> str:
        found = escaped.get(value)
        if found is None:
            found = escaped[value] = _escape_value(value)
        return found

    for family in families:
        name = family.name + "_total" if family.type == "counter" else family.name
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n")
        for s in family.samples:
            value = floatToGoString(s.value)
            if not s.labels:
                out.append(f"{s.name} {value}\n")
                continue
            labels = ",".join([f'{k}="{esc(v)}"' for k, v in sorted(s.labels.items())])
            out.append(f"{s.name}{{{labels}}} {value}\n")
    return "".join(out).encode()


class CostboardCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        return build_families(metrics_settings())

    def describe(self) -> Iterable[Metric]:
        # Names only: registering must not query a database that may not exist yet (migrate).
        return Families(metrics_settings().labels).all()


# Costboard's own registry, so the view can cache these families' *rendered* text: formatting
# 10k samples costs as much as reading them. django-prometheus's metrics stay in REGISTRY.
COSTBOARD_REGISTRY = CollectorRegistry()
_registered: CostboardCollector | None = None


def register(registry: CollectorRegistry = COSTBOARD_REGISTRY) -> CostboardCollector:
    """Register the collector once per process (AppConfig.ready may run more than once)."""
    global _registered
    if _registered is None:
        _registered = CostboardCollector()
        registry.register(_registered)
    return _registered


SNAPSHOT_KEY = "costboard:metrics:snapshot"
_lock = threading.Lock()


def tenant_conf(conf: MetricsSettings) -> MetricsSettings:
    """A tenant's scrape is always labelled by tenant, so its Prometheus can tell whose it is."""
    return conf if "tenant" in conf.labels else replace(conf, labels=("tenant", *conf.labels))


def tenant_exposition(tenant: int) -> bytes:
    """The costboard_* families of one tenant as Prometheus text (a tenant read key's scrape),
    cached per tenant like the operator's snapshot but rendered on demand (no beat task)."""
    conf = tenant_conf(metrics_settings())
    key = f"{SNAPSHOT_KEY}:tenant:{tenant}"
    cached = _cached(conf, key)
    if cached is not None:
        return cached
    with _lock:
        cached = _cached(conf, key)
        if cached is not None:
            return cached
        started = time.time()
        text = render_text(build_families(conf, tenant))
        _share(key, conf, started, text)
    return text


def exposition() -> bytes:
    """The costboard_* families as Prometheus text.

    The rendered text is shared by every web process through the cache (Redis in production)
    for METRICS_CACHE_SECONDS, and a beat task re-renders it before it expires, so a scrape
    usually costs one cache read. All processes serve the same snapshot, and a snapshot is
    only replaced by a newer one, so totals never go backwards between scrapes.
    """
    conf = metrics_settings()
    cached = _cached(conf)
    return cached if cached is not None else refresh(conf)


def _cached(conf: MetricsSettings, key: str = SNAPSHOT_KEY) -> bytes | None:
    try:
        snap = cache.get(key)
    except Exception:  # a cache outage must not take /metrics down: read the database
        return None
    if snap is None or snap[0] != repr(conf) or time.time() - snap[1] >= conf.cache_seconds:
        return None
    return snap[2]


def refresh(conf: MetricsSettings | None = None, force: bool = False) -> bytes:
    """Render from the database and share the result; `force` is the beat task's re-render."""
    conf = conf or metrics_settings()
    # One thread of this process reads the database at a time; the others reuse its text.
    with _lock:
        cached = None if force else _cached(conf)
        if cached is not None:
            return cached
        started = time.time()
        text = render_text(COSTBOARD_REGISTRY.collect())
        _share(SNAPSHOT_KEY, conf, started, text)
    return text


def _share(key: str, conf: MetricsSettings, started: float, text: bytes) -> None:
    with contextlib.suppress(Exception):  # unshared is still correct, only slower
        cache.set(key, (repr(conf), started, text), timeout=max(60, conf.cache_seconds * 6))
