"""What the scope's actual usage would have cost on other models, from the rollups.

Prices are linear in each token kind, so pricing a rollup row's token sums equals pricing
each of its calls and adding, as long as one price holds for the whole row; and as a
candidate prices every call alike whatever model made it, the scope's calls of one day are
summed over all models (one row a day, from the rollups' "all" slice when unfiltered). Rows
are read per day, and per hour for a candidate whose price changes within a day (a start date at
midnight never does; a time-of-day price does). A per-call price (per request) is added once
per call. Tiered prices are the one thing sums cannot carry: a tier applies to a call by its
own input size. Rows also count calls by size (input + output tokens, `TOKENS_BOUNDS`), so a
row whose calls all stay under a candidate's first tier is exact at the base tier; calls
that may be above it are priced at the base tier too and counted in `tier_calls`, which the
page and the API show next to the figure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from dashboard import selectors as pages
from dashboard.filters import Filters
from rollups.forecast import forecast_period_end
from rollups.models import TOKENS_BOUNDS, TOKENS_FIELDS
from tenants.labels import TeamLabels
from tenants.models import Tenant
from whatif.prices import Candidate

ZERO = Decimal(0)
KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
SUMS = (*KINDS, "requests", "cost_usd", *TOKENS_FIELDS)
MONTH = timedelta(days=30)
FORECAST_HISTORY = timedelta(days=35)  # what rollups.forecast reads: four weeks of weekdays


@dataclass(frozen=True)
class Bucket:
    """The scope's sums over [start, end), all models together."""

    start: datetime
    end: datetime
    tokens: tuple[int, int, int, int]
    requests: int
    cost: Decimal
    by_size: tuple[int, ...]  # calls per TOKENS_BOUNDS bucket

    def calls_above(self, tokens: int) -> int:
        """Calls that may have more than `tokens` input tokens (their size bucket allows it)."""
        last = len(TOKENS_BOUNDS)
        return sum(n for i, n in enumerate(self.by_size) if i == last or TOKENS_BOUNDS[i] > tokens)


@dataclass
class Priced:
    """A candidate's cost over the scope, per period and in total."""

    candidate: Candidate
    cost: Decimal = ZERO
    series: dict[date | datetime, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    tier_calls: int = 0  # calls that may be above the first tier, priced at the base tier
    unpriced_calls: int = 0  # calls at a moment the candidate has no price
    split_calls: int = 0  # calls in an hour where the candidate's price changes
    sources: set[str] = field(default_factory=set)

    @property
    def exact(self) -> bool:
        return not (self.tier_calls or self.unpriced_calls or self.split_calls)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def buckets(tenant: Tenant, f: Filters, teams: TeamLabels, hourly: bool) -> list[Bucket]:
    """The scope's sums per day (or hour), one query."""
    sums = {name: Sum(name) for name in SUMS}
    if hourly:
        rows: Any = pages.hourly(tenant, f, teams).values("hour")
    else:
        rows = pages.daily(tenant, f, teams, f.first_day, f.last_day).values("day")
    out = []
    for r in rows.annotate(**sums).order_by():
        start = r["hour"] if hourly else _day_start(r["day"])
        out.append(
            Bucket(
                start=start,
                end=start + (timedelta(hours=1) if hourly else timedelta(days=1)),
                tokens=(r[KINDS[0]], r[KINDS[1]], r[KINDS[2]], r[KINDS[3]]),
                requests=r["requests"],
                cost=r["cost_usd"],
                by_size=tuple(r[name] for name in TOKENS_FIELDS),
            )
        )
    return out


def _price(result: Priced, b: Bucket, key: date | datetime) -> bool:
    """Add the bucket's cost on the candidate; False if the price changes inside it."""
    span = result.candidate.span(b.start)
    inside = span.start <= b.start and b.end <= span.end
    if not inside and b.end - b.start > timedelta(hours=1):
        return False
    result.split_calls += 0 if inside else b.requests
    result.sources.add(span.source)
    if span.cost is None:
        result.unpriced_calls += b.requests
        return True
    # An affine function of the counts: the constant (a per-call price) once per call.
    cost = span.cost(*b.tokens) + (b.requests - 1) * span.cost(0, 0, 0, 0)
    if span.first_tier is not None:
        result.tier_calls += b.calls_above(span.first_tier)
    result.cost += cost
    result.series[key] += cost
    return True


class Scope:
    """The scope's rollup rows, read once per granularity and reused by every candidate."""

    def __init__(self, tenant: Tenant, f: Filters, teams: TeamLabels) -> None:
        self.tenant, self.f, self.teams = tenant, f, teams
        self.coarse = buckets(tenant, f, teams, f.hourly)
        self._hours: list[Bucket] | None = None

    def key(self, b: Bucket) -> date | datetime:
        return b.start if self.f.hourly else b.start.date()

    @property
    def hours(self) -> list[Bucket]:
        if self._hours is None:
            self._hours = buckets(self.tenant, self.f, self.teams, hourly=True)
        return self._hours

    def actual(self) -> tuple[Decimal, dict[date | datetime, Decimal]]:
        series: dict[date | datetime, Decimal] = defaultdict(Decimal)
        for b in self.coarse:
            series[self.key(b)] += b.cost
        return sum(series.values(), ZERO), series

    def price(self, candidate: Candidate) -> Priced:
        result = Priced(candidate)
        if all(_price(result, b, self.key(b)) for b in self.coarse):
            return result
        # The price changes within a day: price every hour instead.
        result = Priced(candidate)
        for b in self.hours:
            _price(result, b, self.key(b))
        return result


@dataclass(frozen=True)
class Outlook:
    month_end: date
    actual: Decimal
    forecasts: list[Decimal]  # per candidate, in order


def month_forecast(
    tenant: Tenant, f: Filters, teams: TeamLabels, candidates: list[Candidate], today: date
) -> Outlook:
    """This month's forecast (rollups.forecast, from the last five weeks) on each model."""
    first = today.replace(day=1)
    month_end = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    window = replace(
        f,
        range="custom",
        start=_day_start(today) - FORECAST_HISTORY,
        end=_day_start(today + timedelta(days=1)),
    )
    scope = Scope(tenant, window, teams)

    def forecast(series: dict[Any, Decimal]) -> Decimal:
        mtd = sum((v for d, v in series.items() if d >= first), ZERO)
        return forecast_period_end(dict(series), today, month_end, mtd)

    _, actual = scope.actual()
    return Outlook(
        month_end, forecast(actual), [forecast(scope.price(c).series) for c in candidates]
    )


@dataclass(frozen=True)
class Comparison:
    f: Filters
    actual: Decimal
    actual_series: dict[date | datetime, Decimal]
    candidates: list[Priced]
    outlook: Outlook
    requests: int

    @property
    def scale(self) -> Decimal:
        """From the period to a 30-day month."""
        return Decimal(MONTH.total_seconds()) / Decimal((self.f.end - self.f.start).total_seconds())

    def monthly(self, cost: Decimal) -> Decimal:
        return cost * self.scale

    def delta_pct(self, cost: Decimal) -> Decimal | None:
        if not self.actual:
            return None
        return (cost - self.actual) * 100 / self.actual


def compare(
    tenant: Tenant,
    f: Filters,
    teams: TeamLabels,
    candidates: list[Candidate],
    today: date | None = None,
) -> Comparison:
    scope = Scope(tenant, f, teams)
    actual, series = scope.actual()
    today = today or timezone.now().date()
    return Comparison(
        f=f,
        actual=actual,
        actual_series=series,
        candidates=[scope.price(c) for c in candidates],
        outlook=month_forecast(tenant, f, teams, candidates, today),
        requests=sum(b.requests for b in scope.coarse),
    )


def most_used(tenant: Tenant, f: Filters, teams: TeamLabels) -> tuple[str, str] | None:
    """The scope's provider/model with the most calls in the period."""
    row = (
        pages.daily(tenant, f, teams, f.first_day, f.last_day, "model")
        .values("provider", "model")
        .annotate(n=Sum("requests"))
        .order_by("-n", "provider", "model")
        .first()
    )
    return None if row is None else (row["provider"], row["model"])
