"""Reads of the rollups for /metrics: a few GROUP BY queries per scrape.

Operator-wide (`tenant=None`, the METRICS_TOKEN scrape) or of one tenant (a tenant's read-key
scrape): a tenant's scrape queries only that tenant's rows, so no other tenant's series can
reach it, whatever is rendered afterwards.

Every total is summed over all time from the database, so each web process (and each process
after a restart) reports the same, never-decreasing numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum

from budgets.models import BudgetStatus
from metrics.conf import TAG_LABEL_PREFIX, label_columns, tag_key
from pricing.families import ModelNames
from rollups import health as rollup_health
from rollups.models import (
    LATENCY_FIELDS,
    NO_TAG_LABEL,
    NO_TAG_VALUE,
    TOKENS_FIELDS,
    IngestCount,
    LifetimeRollup,
    TagDailyRollup,
    TagDailySlice,
    TagDimension,
)
from rollups.tag_selectors import in_slice, slice_for
from tenants.labels import TeamLabels
from tenants.models import Tenant

Labels = tuple[str, ...]
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
USAGE_SUMS = (
    "cost_usd", "requests", "errors", *TOKEN_COLUMNS, "latency_sum_ms", *LATENCY_FIELDS,
    *TOKENS_FIELDS,
)  # fmt: skip
INGEST_SUMS = ("accepted", "duplicates", "rejected")


def _added(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


@dataclass(slots=True)
class Usage:
    """All-time sums of one label set. Money stays Decimal; floats only at the exposition."""

    cost_usd: Decimal
    requests: int
    errors: int
    tokens: list[int]  # input, output, cache_read, cache_write
    latency_sum_ms: float
    latency_buckets: list[int]  # calls per LATENCY_FIELDS bucket, not cumulative
    tokens_buckets: list[int]  # calls per TOKENS_FIELDS bucket (input + output tokens)

    @classmethod
    def from_sums(cls, sums: Sequence[Any]) -> Usage:
        cost, requests, errors, *rest = sums
        tokens, latency_sum, rest = rest[:4], rest[4], rest[5:]
        latency, per_request = rest[: len(LATENCY_FIELDS)], rest[len(LATENCY_FIELDS) :]
        return cls(
            Decimal(cost), requests, errors, list(tokens), float(latency_sum), list(latency),
            list(per_request),
        )  # fmt: skip

    def add(self, other: Usage) -> None:
        self.cost_usd += other.cost_usd
        self.requests += other.requests
        self.errors += other.errors
        self.tokens = _added(self.tokens, other.tokens)
        self.latency_sum_ms += other.latency_sum_ms
        self.latency_buckets = _added(self.latency_buckets, other.latency_buckets)
        self.tokens_buckets = _added(self.tokens_buckets, other.tokens_buckets)


@dataclass(slots=True)
class IngestTotals:
    accepted: int
    duplicates: int
    rejected: int

    def add(self, other: IngestTotals) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected

    @property
    def total(self) -> int:
        return self.accepted + self.duplicates + self.rejected


def _tenant_slugs(tenant: int | None) -> dict[int, str]:
    tenants = Tenant.objects.all() if tenant is None else Tenant.objects.filter(pk=tenant)
    return dict(tenants.values_list("pk", "slug"))


def _rows(model: Any, tenant: int | None) -> Any:
    # Operator-wide by design when no tenant: /metrics reports every tenant to the operator.
    return model.unscoped_all_tenants.all() if tenant is None else model.objects.for_tenant(tenant)


def _families() -> Callable[[Any, Any, Any], str]:
    """(tenant id, provider, model) -> model family, by each tenant's own family rules."""
    names: dict[int, ModelNames] = {}

    def family(tenant_id: Any, provider: Any, model: Any) -> str:
        if tenant_id not in names:
            names[tenant_id] = ModelNames.of(tenant_id)
        return names[tenant_id].family(provider, model)

    return family


def _namers(labels: Sequence[str], tenant: int | None) -> list[Callable[..., str]]:
    """Per label, a function turning its rollup columns' values into the label value."""
    tenants = _tenant_slugs(tenant) if "tenant" in labels else {}
    lookups: dict[str, Callable[..., str]] = {
        "tenant": lambda pk: tenants.get(pk, f"deleted:{pk}"),
        "model_family": _families(),
    }
    if "team" in labels:
        # The teams labelled as their own pages label them: a team deleted after its usage
        # was rolled up keeps its own series (see tenants.labels).
        teams = TeamLabels.of_every_tenant() if tenant is None else TeamLabels.of(tenant)
        lookups["team"] = teams.label
    return [
        _tag_value if label.startswith(TAG_LABEL_PREFIX) else lookups.get(label, str)
        for label in labels
    ]


def _tag_value(stored: str) -> str:
    # "" would read as "no such label" in PromQL: calls without the tag show as the pages do.
    return NO_TAG_LABEL if stored == NO_TAG_VALUE else stored


def _merge(out: dict[Labels, Any], key: Labels, value: Any) -> None:
    # Distinct rollup keys can share label values (e.g. two tenants' "search" teams when
    # "tenant" is not a label): their sums are added, never overwritten.
    seen = out.get(key)
    if seen is None:
        out[key] = value
    else:
        seen.add(value)


def _room_to_hash() -> None:
    """Let PostgreSQL aggregate in memory for this one query (SET LOCAL: this transaction).

    Its estimate of the number of label sets multiplies each column's distinct values, so with
    the default 4 MB it sorts every rollup row on disk instead of hashing a few thousand groups.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")


def _grouped(
    rows: Any, labels: Sequence[str], sums: Sequence[str], tenant: int | None
) -> Iterable[tuple[Labels, tuple[Any, ...]]]:
    """One GROUP BY over every tenant's rows, or one tenant's: (label values, sums) per group.

    Groups whose labels come out equal (two models of one family) are yielded apart: callers
    `_merge` them."""
    sources = [label_columns(label) for label in labels]
    columns = list(dict.fromkeys(column for source in sources for column in source))
    aggregates = {f"sum_{name}": Sum(name) for name in sums}
    if not columns:
        total = rows.aggregate(**aggregates)
        if total[f"sum_{sums[0]}"] is not None:
            yield (), tuple(total[f"sum_{name}"] for name in sums)
        return
    with transaction.atomic():
        _room_to_hash()
        grouped = list(rows.values_list(*columns).annotate(**aggregates).order_by())
    namers = _namers(labels, tenant)  # read after the rows, so every group's tenant and team exist
    at = {column: i for i, column in enumerate(columns)}
    for row in grouped:
        key = tuple(
            name(*(row[at[column]] for column in source))
            for name, source in zip(namers, sources, strict=True)
        )
        yield key, row[len(columns) :]


def usage_by_labels(labels: Sequence[str], tenant: int | None = None) -> dict[Labels, Usage]:
    """All-time usage per label set (of the configured labels), of every tenant or one."""
    # LifetimeRollup holds HourlyRollup's all-time sums (written in the same transaction by
    # rollups.services): one row per label set, however long the history.
    out: dict[Labels, Usage] = {}
    key = tag_key(labels)
    rows = _rows(LifetimeRollup, tenant) if key is None else _tagged(key, labels, tenant)
    for label_values, sums in _grouped(rows, labels, USAGE_SUMS, tenant):
        _merge(out, label_values, Usage.from_sums(sums))
    return out


# Columns every tag slice row has: the tenant and the tag's own (environment: see in_slice).
SLICE_FREE = ("tenant_id", "tag_value")


def _tagged(key: str, labels: Sequence[str], tenant: int | None) -> Any:
    """The all-time tag rollups of `key` of the tenants that chose it (others have none).

    All time is the daily tag rollups' sum: they hold the key's history since it was chosen
    (`TagDimension.history_from`), and are rebuilt when it is chosen again, which Prometheus
    sees as a counter reset. Where a tag slice holds every labelled column (the key's value
    with at most one of team, feature, model, provider, endpoint or status), its rows are
    summed instead: one per value and day rather than one per every dimension's combination
    (at 10M events over 90 days, 1.6 s to a few ms per scrape)."""
    chosen = _rows(TagDimension, tenant).filter(key=key).values("tenant_id")
    fields = [c for label in labels for c in label_columns(label) if c not in SLICE_FREE]
    name = slice_for(fields)
    if name is None:
        return _rows(TagDailyRollup, tenant).filter(tag_key=key, tenant_id__in=chosen)
    rows = _rows(TagDailySlice, tenant).filter(tag_key=key, tenant_id__in=chosen)
    return in_slice(rows, name, "environment" in labels)


def ingest_by_labels(by_tenant: bool, tenant: int | None = None) -> dict[Labels, IngestTotals]:
    """All-time ingest outcomes, per tenant slug when `by_tenant`, else one total (of every
    tenant, or of `tenant`)."""
    out: dict[Labels, IngestTotals] = {}
    labels = ["tenant"] if by_tenant else []
    for key, sums in _grouped(_rows(IngestCount, tenant), labels, INGEST_SUMS, tenant):
        _merge(out, key, IngestTotals(*sums))
    return out


def budget_ratios(tenant: int | None = None) -> list[tuple[Labels, float]]:
    """Spend / limit of every budget (of every tenant, or one) in its current period:
    (tenant, team, budget) -> ratio."""
    # Operator-wide without a tenant: for the burn alerts and the Grafana panel.
    rows = _rows(BudgetStatus, tenant).select_related("tenant", "budget__team")
    out: list[tuple[Labels, float]] = []
    for status in rows.order_by("tenant__slug", "budget__name", "pk"):
        budget = status.budget
        team = budget.team.slug if budget.team else ""
        ratio = status.spend_usd / budget.amount_usd if budget.amount_usd else 0
        out.append(((status.tenant.slug, team, budget.name), float(ratio)))
    return out


def _by_tenant_label(
    counts: dict[int, int], by_tenant: bool, tenant: int | None, zeros_for: Iterable[int] = ()
) -> dict[Labels, int]:
    """Per tenant slug when `by_tenant` (with 0 for the tenants of `zeros_for` not in
    `counts`), else one operator total (present even when 0)."""
    if not by_tenant:
        return {(): sum(counts.values())}
    slugs = _tenant_slugs(tenant)
    counts = dict.fromkeys(zeros_for, 0) | counts
    return {(slugs.get(pk, f"deleted:{pk}"),): n for pk, n in sorted(counts.items())}


def rollup_failures(by_tenant: bool, tenant: int | None = None) -> dict[Labels, int]:
    """Failed rollup runs and refused batch merges (tenants that never failed left out)."""
    return _by_tenant_label(rollup_health.failures_by_tenant(tenant), by_tenant, tenant)


def quarantined_batches(by_tenant: bool, tenant: int | None = None) -> dict[Labels, int]:
    """Quarantined batches now, per tenant or in all; per tenant, 0 for every tenant that has
    ingest counts (the series the ingest family has), so the gauge exists before any batch
    is quarantined."""
    # Which tenants (every one, or `tenant`) ever had a batch rolled up.
    seen = _rows(IngestCount, tenant).values_list("tenant_id", flat=True).distinct()
    quarantined = rollup_health.quarantined_by_tenant(tenant)
    return _by_tenant_label(quarantined, by_tenant, tenant, zeros_for=seen)
