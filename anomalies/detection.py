"""Find anomalies in hourly series with hour-of-week baselines. Pure functions, no database.

Each check compares one hour of one feature against its own past: the same hour of the week
over the last four weeks (and the hours beside it, for more samples), so a Monday-morning
peak is compared with earlier Monday mornings, not with a quiet Sunday. A ratio threshold
(the seed's table) must be passed *and* a z-score, so ordinary noise does not page anyone.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
BASELINE_WEEKS = 4


@dataclass
class Stats:
    requests: int = 0
    cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0


@dataclass
class FeatureSeries:
    hours: dict[datetime, Stats] = field(default_factory=dict)
    # (provider/model) -> hour -> stats, for model drift
    models: dict[str, dict[datetime, Stats]] = field(default_factory=dict)

    @property
    def first_hour(self) -> datetime | None:
        return min(self.hours, default=None)


@dataclass(frozen=True)
class Thresholds:
    volume_warning: Decimal
    volume_critical: Decimal
    cost_warning: Decimal
    cost_critical: Decimal
    cache_warning: Decimal
    cache_critical: Decimal
    drift_critical_ratio: Decimal
    min_z: float
    min_requests: int


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    feature: str
    observed: Decimal
    baseline: Decimal
    z_score: float | None
    summary: str
    model: str = ""


@dataclass(frozen=True)
class Baseline:
    mean: float
    std: float
    samples: int

    def z(self, value: float) -> float | None:
        return (value - self.mean) / self.std if self.std > 0 else None


def volume_baseline(series: FeatureSeries, hour: datetime) -> Baseline | None:
    """Requests at the same hour of the week (±1 h) over four weeks; cold start: past days."""
    first = series.first_hour
    if first is None:
        return None
    weeks = [hour - WEEK * k for k in range(1, BASELINE_WEEKS + 1) if hour - WEEK * k >= first]
    anchors = weeks or [
        hour - timedelta(days=d) for d in range(1, 7) if hour - timedelta(days=d) >= first
    ]
    samples = [
        series.hours.get(a + HOUR * s, Stats()).requests for a in anchors for s in (-1, 0, 1)
    ]
    if len(samples) < 3:
        return None  # less than a day of history: nothing sensible to compare with
    return Baseline(statistics.fmean(samples), statistics.pstdev(samples), len(samples))


def _passes_z(baseline: Baseline, value: float, min_z: float) -> tuple[bool, float | None]:
    z = baseline.z(value)
    return (z is None or z >= min_z), z


def check_volume(
    feature: str, series: FeatureSeries, hour: datetime, t: Thresholds
) -> Finding | None:
    observed = series.hours.get(hour, Stats()).requests
    baseline = volume_baseline(series, hour)
    if baseline is None or observed < t.min_requests:
        return None
    expected = max(baseline.mean, 1.0)
    ratio = Decimal(observed) / Decimal(str(expected))
    # Counts are noisy on their own (Poisson: variance ~ mean), so the z-score adds that
    # sampling noise to the baseline's spread; a busy hour of a small feature is not a spike.
    noisy = Baseline(baseline.mean, (baseline.std**2 + expected) ** 0.5, baseline.samples)
    ok, z = _passes_z(noisy, observed, t.min_z)
    if ratio < t.volume_warning or not ok:
        return None
    severity = "critical" if ratio >= t.volume_critical else "warning"
    summary = f"{feature}: {observed} calls in an hour, {ratio:.1f}x the usual {expected:.0f}"
    return Finding(
        "volume_spike",
        severity,
        feature,
        Decimal(observed),
        Decimal(str(round(expected, 6))),
        z,
        summary,
    )


def _window(series: FeatureSeries, hour: datetime, days: int) -> Iterable[Stats]:
    start = hour - timedelta(days=days)
    return (s for h, s in series.hours.items() if start <= h < hour)


def check_cost_per_request(
    feature: str, series: FeatureSeries, hour: datetime, t: Thresholds
) -> Finding | None:
    now = series.hours.get(hour, Stats())
    past = [s for s in _window(series, hour, 7) if s.requests]
    total_requests = sum(s.requests for s in past)
    if now.requests < t.min_requests or total_requests < t.min_requests * 3 or not now.cost:
        return None
    average = sum((s.cost for s in past), Decimal(0)) / total_requests
    observed = now.cost / now.requests
    if not average:
        return None
    change = observed / average - 1
    hourly = [float(s.cost / s.requests) for s in past if s.requests >= max(1, t.min_requests // 3)]
    baseline = (
        Baseline(statistics.fmean(hourly), statistics.pstdev(hourly), len(hourly))
        if len(hourly) >= 3
        else None
    )
    ok, z = _passes_z(baseline, float(observed), t.min_z) if baseline else (True, None)
    if change < t.cost_warning or not ok:
        return None
    severity = "critical" if change >= t.cost_critical else "warning"
    summary = f"{feature}: ${observed:.4f} per call, {change:+.0%} against the 7-day average ${average:.4f}"
    return Finding("cost_per_request", severity, feature, observed, average, z, summary)


def check_cache(
    feature: str, series: FeatureSeries, hour: datetime, t: Thresholds
) -> Finding | None:
    now = series.hours.get(hour, Stats())
    past = list(_window(series, hour, 7))
    past_input = sum(s.input_tokens for s in past)
    if now.requests < t.min_requests or not now.input_tokens or not past_input:
        return None
    usual = Decimal(sum(s.cache_read_tokens for s in past)) / past_input
    observed = Decimal(now.cache_read_tokens) / now.input_tokens
    # Only a feature that used its cache well can have a cache efficiency *drop*.
    if usual < t.cache_warning or observed >= t.cache_warning:
        return None
    severity = "critical" if observed < t.cache_critical else "warning"
    summary = f"{feature}: cache hit rate {observed:.0%}, usually {usual:.0%}"
    return Finding("cache_hit_rate", severity, feature, observed, usual, None, summary)


def _rate(stats: Iterable[Stats]) -> Decimal | None:
    """USD per token, to compare models."""
    stats = list(stats)
    tokens = sum(s.input_tokens + s.output_tokens for s in stats)
    return sum((s.cost for s in stats), Decimal(0)) / tokens if tokens else None


def check_drift(
    feature: str, series: FeatureSeries, hour: datetime, t: Thresholds
) -> list[Finding]:
    """A model this feature never used in four weeks; critical when it costs much more."""
    start = hour - WEEK * BASELINE_WEEKS
    first = series.first_hour
    if first is None or first > hour - timedelta(days=1):
        return []  # a new feature has no usual models yet
    usual = {m for m, hours in series.models.items() if any(start <= h < hour for h in hours)}
    usual_rate = _rate(s for m in usual for h, s in series.models[m].items() if start <= h < hour)
    findings = []
    for model, hours in series.models.items():
        now = hours.get(hour)
        if model in usual or now is None or not now.requests:
            continue
        rate = _rate([now])
        ratio = rate / usual_rate if rate is not None and usual_rate else None
        critical = ratio is not None and ratio >= t.drift_critical_ratio
        summary = f"{feature}: new model {model}" + (
            f", {ratio:.1f}x the usual cost per token" if ratio else ""
        )
        findings.append(
            Finding(
                "model_drift",
                "critical" if critical else "warning",
                feature,
                ratio or Decimal(0),
                Decimal(1),
                None,
                summary,
                model,
            )
        )
    return findings


def find(
    series_by_feature: dict[str, FeatureSeries], hour: datetime, t: Thresholds
) -> list[Finding]:
    findings: list[Finding] = []
    for feature, series in series_by_feature.items():
        for check in (check_volume, check_cost_per_request, check_cache):
            found = check(feature, series, hour, t)
            if found:
                findings.append(found)
        findings.extend(check_drift(feature, series, hour, t))
    return findings
