"""What the pages show, aggregated over the rollups only (never raw events).

Every function takes the tenant first and reads through `for_tenant`, and each page makes a
bounded number of queries: one per figure or table, whatever the data size.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, Case, DecimalField, F, Func, Q, QuerySet, Sum, When
from django.utils import timezone

from dashboard.filters import Filters
from dashboard.rows import FULL, daily, period_field, rollups, slices_for, team_filter
from dashboard.rows import hourly as hourly  # the what-if page reads the pages' rows from here
from pricing.families import ModelNames
from rollups import statuses, windows
from rollups.forecast import forecast_period_end
from rollups.models import LATENCY_BOUNDS_MS, LATENCY_FIELDS, ConsumerDailyRollup, LifetimeRollup
from tenants.labels import TeamLabels
from tenants.models import ApiKey, Tenant

ZERO = Decimal(0)
SUMMED = (
    "requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cost_usd", "unpriced_requests", "latency_count", *LATENCY_FIELDS,
)  # fmt: skip
DIM_FIELD = {
    "team": "team_pk",
    "feature": "feature",
    "model": "model",
    "provider": "provider",
    "environment": "environment",
    "endpoint": "endpoint",
    "status": "status",
    "tag": "tag_value",  # a chosen tag key's values, in its tag rollups
}


@dataclass
class Totals:
    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name == "values":
            raise AttributeError(name)
        value = self.values.get(name)
        return value if value is not None else (ZERO if name == "cost_usd" else 0)

    @property
    def cost_per_request(self) -> Decimal | None:
        return self.cost_usd / self.requests if self.requests else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def cache_hit_rate(self) -> float | None:
        """Share of input tokens served from the prompt cache."""
        return self.cache_read_tokens / self.input_tokens if self.input_tokens else None

    def latency(self, q: float) -> float | None:
        return percentile([getattr(self, n) for n in LATENCY_FIELDS], q)


def totals_now_and_before(tenant: Tenant, f: Filters, teams: TeamLabels) -> tuple[Totals, Totals]:
    """The period's totals and the previous period's, in one query over both: grouped by
    which period a row falls in (plain sums build far faster than filtered ones)."""
    span = replace(f, start=f.previous().start)
    rows = rollups(tenant, span, teams).values(now=_is_now(f))
    found = {r.pop("now"): Totals(r) for r in rows.annotate(**{n: Sum(n) for n in SUMMED})}
    return found.get(True, Totals()), found.get(False, Totals())


def _is_now(f: Filters) -> Case:
    return Case(When(in_period(f), then=True), default=False, output_field=BooleanField())


def in_period(f: Filters) -> Q:
    """Rows of the period itself, in a query that also reads the period before."""
    return Q(**{f"{period_field(f)}__gte": f.start if f.hourly else f.first_day})


def percentile(buckets: list[int], q: float) -> float | None:
    """The q-quantile in ms from histogram counts, interpolated inside its bucket."""
    total = sum(buckets)
    if not total:
        return None
    rank, seen, lower = q * total, 0, 0.0
    for count, upper in zip(buckets, (*LATENCY_BOUNDS_MS, None), strict=True):
        if count and seen + count >= rank:
            if upper is None:
                return lower  # open-ended last bucket: report its lower edge
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = float(upper) if upper is not None else lower
    return lower


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    cost: Decimal
    requests: int
    tokens: int
    share: float
    change: float | None  # against the previous period; None when it had no spend
    extra: dict[str, Any] = field(default_factory=dict)


def change(now: Decimal, before: Decimal | None) -> float | None:
    if not before:
        return None
    return float((now - before) / before)


def top(
    tenant: Tenant, f: Filters, teams: TeamLabels, dim: str, limit: int | None = 10
) -> list[Row]:
    """Top values of a dimension by spend, with share of the total and change vs before."""
    return tops(tenant, f, teams, (dim,), limit)[dim]


def tops(
    tenant: Tenant, f: Filters, teams: TeamLabels, dims: tuple[str, ...], limit: int | None = 10
) -> dict[str, list[Row]]:
    """`top` of several dimensions; from the slices, all of them in one query.

    One query also covers this period and the one before: the sums are split by which
    period a row falls in, so "change" costs no second pass over the rollups.
    """
    several = len(dims) > 1
    sums = top_sums(f)
    fields = list(dict.fromkeys(name for dim in dims for name in _fields(dim)))
    span = replace(f, start=f.previous().start)
    if several and slices_for(f, dims) is None:
        # No slice holds these under the filters: the full rows are read once, grouped by
        # every dimension together, and each list is summed from those groups here (one
        # pass over the rollups, not one per list: a model family's page, 141 to ~70 ms).
        groups = list(rollups(tenant, span, teams, FULL).values(*fields).annotate(**sums))
        return {
            dim: ranked(_regroup(groups, _fields(dim), tuple(sums)), dim, teams, limit)
            for dim in dims
        }
    rows = rollups(tenant, span, teams, dims).values(*(["grouping"] if several else []), *fields)
    found: dict[str, list[dict[str, Any]]] = {dim: [] for dim in dims}
    for r in rows.annotate(**sums).order_by(F("c").desc(nulls_last=True)):
        if r["c"] is not None:  # spent only in the period before
            found[r["grouping"] if several else dims[0]].append(r)
    return {dim: ranked(found[dim], dim, teams, limit) for dim in dims}


def _regroup(
    groups: list[dict[str, Any]], keys: list[str], sums: tuple[str, ...]
) -> list[dict[str, Any]]:
    """`groups`' `sums` (see `top_sums`; None where no row had any) added up per value of
    `keys`, largest spend first; values spent on only before the period are left out, as
    the one-list query does."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for g in groups:
        empty = {**{k: g[k] for k in keys}, **dict.fromkeys(sums)}
        row = merged.setdefault(tuple(g[k] for k in keys), empty)
        for name in sums:
            if g[name] is not None:
                row[name] = (row[name] or 0) + g[name]
    spent = [r for r in merged.values() if r["c"] is not None]
    return sorted(spent, key=lambda r: r["c"], reverse=True)


def top_sums(f: Filters) -> dict[str, Sum]:
    """What a top list sums, over a query reading this period and the one before: spend,
    calls and tokens of the period, and spend before it ("p", for the change)."""
    now = in_period(f)
    return {
        "c": Sum("cost_usd", filter=now),
        "n": Sum("requests", filter=now),
        "t": Sum(F("input_tokens") + F("output_tokens"), filter=now),
        "p": Sum("cost_usd", filter=~now),
    }


def ranked(
    current: list[dict[str, Any]], dim: str, teams: TeamLabels, limit: int | None
) -> list[Row]:
    total = sum((r["c"] for r in current), ZERO)
    chosen = current[:limit] if limit else current
    return [_row(r, _fields(dim), dim, teams, total) for r in chosen]


def _fields(dim: str) -> list[str]:
    return ["provider", "model"] if dim == "model" else [DIM_FIELD[dim]]


def _row(r: dict[str, Any], fields: list[str], dim: str, teams: TeamLabels, total: Decimal) -> Row:
    key = tuple(r[k] for k in fields)
    cost = r["c"] or ZERO
    shown = label(dim, key[0], teams) if len(key) == 1 else "/".join(str(k) for k in key)
    extra: dict[str, Any] = {}
    if dim == "team":
        extra["team"] = teams.team(key[0])
    elif dim == "feature" and key[0]:
        extra["feature"] = key[0]  # the name as stored, for its page's link ("(none)" has none)
    return Row(
        key=shown,
        label=shown,
        cost=cost,
        requests=r["n"] or 0,
        tokens=r["t"] or 0,
        share=float(cost / total) if total else 0.0,
        change=change(cost, r["p"]),
        extra=extra,
    )


def label(dim: str, value: Any, teams: TeamLabels) -> str:
    """A dimension's value as pages show it."""
    if dim == "team":
        return teams.label(value)
    if dim == "status":
        return statuses.label(value)
    return str(value) if value else "(none)"


def periods(f: Filters) -> list[datetime | date]:
    if f.hourly:
        out: list[datetime | date] = []
        at = f.start
        while at < f.end:
            out.append(at)
            at += timedelta(hours=1)
        return out
    return [f.first_day + timedelta(days=n) for n in range((f.last_day - f.first_day).days + 1)]


def per_period(tenant: Tenant, f: Filters, teams: TeamLabels) -> dict[Any, Totals]:
    """All measures per period, for the cost-per-request, token, cache, error and latency charts."""
    period = period_field(f)
    rows = rollups(tenant, f, teams).values(period).annotate(**{n: Sum(n) for n in SUMMED})
    return {r.pop(period): Totals(r) for r in rows.order_by(period)}


def unpriced_models(tenant: Tenant, f: Filters, teams: TeamLabels) -> list[dict[str, Any]]:
    rows = rollups(tenant, f, teams, "model").filter(unpriced_requests__gt=0)
    return list(
        rows.values("provider", "model").annotate(n=Sum("unpriced_requests")).order_by("-n")
    )


@dataclass(frozen=True)
class MonthOutlook:
    month_to_date: Decimal
    forecast: Decimal
    month_end: date


def month_outlook(
    tenant: Tenant, f: Filters, teams: TeamLabels, today: date | None = None
) -> MonthOutlook:
    """Month to date and forecast to month end (with the page's team/feature/model filters)."""
    today = today or timezone.now().date()
    first = today.replace(day=1)
    month_end = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    days = dict(
        daily(tenant, f, teams, today - timedelta(days=35), today)
        .values("day")
        .annotate(c=Sum("cost_usd"))
        .values_list("day", "c")
    )
    mtd = sum((v for d, v in days.items() if d >= first), ZERO)
    return MonthOutlook(mtd, forecast_period_end(days, today, month_end, mtd), month_end)


def consumers(
    tenant: Tenant, f: Filters, teams: TeamLabels, kind: str, limit: int = 10
) -> list[Row]:
    """Top end users or API keys by spend, with share of their total and change vs before.

    A standard range without a team filter reads the window of its closed days plus today;
    any other view sums the per-day rollups, where team and environment filters apply.
    """
    ranked = None
    if not f.team:
        today = timezone.now().date()
        ranked = windows.top_consumers(
            tenant.pk, kind, f.first_day, f.last_day, f.environment, today, limit
        )
    chosen, total = ranked or _top_of_days(tenant, f, teams, kind, limit)
    prev = f.previous()
    before_rows = _consumer_rows(tenant, f, teams, kind, prev.first_day, prev.last_day)
    before = dict(
        before_rows.filter(consumer__in=[r["consumer"] for r in chosen])
        .values("consumer")
        .annotate(c=Sum("cost_usd"))
        .values_list("consumer", "c")
    )
    names = _key_names(tenant, chosen) if kind == ConsumerDailyRollup.Kind.KEY else {}
    return [
        Row(
            key=r["consumer"],
            label=names.get(r["consumer"], r["consumer"]),
            cost=r["c"] or ZERO,
            requests=r["n"] or 0,
            tokens=r["t"] or 0,
            share=float((r["c"] or ZERO) / total) if total else 0.0,
            change=change(r["c"] or ZERO, before.get(r["consumer"])),
        )
        for r in chosen
    ]


def _top_of_days(
    tenant: Tenant, f: Filters, teams: TeamLabels, kind: str, limit: int
) -> tuple[list[dict[str, Any]], Decimal]:
    rows = _consumer_rows(tenant, f, teams, kind, f.first_day, f.last_day)
    chosen = list(
        rows.values("consumer")
        .annotate(
            c=Sum("cost_usd"),
            n=Sum("requests"),
            t=Sum("input_tokens") + Sum("output_tokens"),
            total=_TotalOfGroups(Sum("cost_usd")),
        )
        .order_by("-c", "consumer")[:limit]
    )
    # Only the shown consumers leave the database; the window sum brings the grand total.
    return chosen, (chosen[0]["total"] or ZERO) if chosen else ZERO


class _TotalOfGroups(Func):
    """`SUM(SUM(x)) OVER ()`: the sum over every group of a grouped query, on each row."""

    template = "SUM(%(expressions)s) OVER ()"
    output_field = DecimalField()


def _consumer_rows(
    tenant: Tenant, f: Filters, teams: TeamLabels, kind: str, first: date, last: date
) -> QuerySet[Any]:
    rows = ConsumerDailyRollup.objects.for_tenant(tenant).filter(
        kind=kind, day__gte=first, day__lte=last
    )
    if f.environment:
        rows = rows.filter(environment=f.environment)
    return team_filter(rows, f, teams)


def _key_names(tenant: Tenant, chosen: list[dict[str, Any]]) -> dict[str, str]:
    pks = [int(r["consumer"]) for r in chosen if r["consumer"].isdigit()]
    keys = ApiKey.objects.for_tenant(tenant).filter(pk__in=pks)
    return {str(k.pk): f"{k.name or 'key'} ({k.prefix})" for k in keys}


def filter_choices(tenant: Tenant, teams: TeamLabels) -> dict[str, list[str]]:
    """Values offered in the filter bar: every environment, feature, model, endpoint and
    model family ever used, and the status classes.

    Read from the all-time rollups (one row per combination), in one query.
    """
    rows = LifetimeRollup.objects.for_tenant(tenant).values_list(
        "environment", "feature", "provider", "model", "endpoint"
    )
    names = ModelNames.of(tenant)
    found: dict[str, set[str]] = {
        n: set() for n in ("environment", "feature", "model", "endpoint", "model_family")
    }
    for environment, feature, provider, model, endpoint in rows.distinct():
        found["environment"].add(environment)
        found["feature"].add(feature)
        found["model"].add(model)
        found["endpoint"].add(endpoint)
        found["model_family"].add(names.family(provider, model))
    choices = {name: sorted(v for v in values if v) for name, values in found.items()}
    choices["team"] = teams.slugs()
    choices["status"] = [name for name in statuses.NAMES if name]
    return choices
