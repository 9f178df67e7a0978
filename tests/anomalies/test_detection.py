"""Detection on constructed series: seasonal baselines, both signals, every kind."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from anomalies.detection import FeatureSeries, Stats, Thresholds, find

LIMITS = Thresholds(
    volume_warning=Decimal("1.5"), volume_critical=Decimal("2.5"), cost_warning=Decimal("0.5"),
    cost_critical=Decimal("1.0"), cache_warning=Decimal("0.60"), cache_critical=Decimal("0.40"),
    drift_critical_ratio=Decimal("1.5"), min_z=3.0, min_requests=30,
)  # fmt: skip
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=UTC)  # a Monday, 10:00 UTC


def usual_calls(hour: datetime) -> int:
    """Busy office hours on weekdays, very quiet weekends: a Monday peak is normal."""
    if hour.weekday() >= 5:
        return 20
    return 400 if 9 <= hour.hour < 18 else 60


def history(
    until: datetime, weeks: int = 5, seed: int = 1, cost: str = "0.01", cache: float = 0.7
) -> FeatureSeries:
    rng = random.Random(seed)
    series = FeatureSeries()
    hour = until - timedelta(weeks=weeks)
    while hour < until:
        n = max(1, int(usual_calls(hour) * rng.uniform(0.9, 1.1)))
        stats = Stats(n, Decimal(cost) * n, 1000 * n, 200 * n, int(1000 * n * cache))
        series.hours[hour] = stats
        series.models.setdefault("openai/gpt-4o-mini", {})[hour] = Stats(
            n, stats.cost, stats.input_tokens, stats.output_tokens, stats.cache_read_tokens
        )
        hour += timedelta(hours=1)
    return series


def with_hour(
    series: FeatureSeries,
    hour: datetime,
    calls: int,
    cost: str = "0.01",
    cache: float = 0.7,
    model: str = "openai/gpt-4o-mini",
) -> FeatureSeries:
    stats = Stats(
        calls, Decimal(cost) * calls, 1000 * calls, 200 * calls, int(1000 * calls * cache)
    )
    series.hours[hour] = stats
    series.models.setdefault(model, {})[hour] = stats
    return series


def kinds(findings) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(f.kind, f.severity) for f in findings]


def test_it_finds_a_spike_at_the_right_severity() -> None:
    warning = with_hour(history(MONDAY_10), MONDAY_10, 720)  # 1.8x a usual Monday 10:00
    critical = with_hour(history(MONDAY_10), MONDAY_10, 1200)  # 3x
    assert kinds(find({"chat": warning}, MONDAY_10, LIMITS)) == [("volume_spike", "warning")]
    assert kinds(find({"chat": critical}, MONDAY_10, LIMITS)) == [("volume_spike", "critical")]


def test_it_does_not_flag_a_normal_monday_peak_after_a_quiet_weekend() -> None:
    series = with_hour(history(MONDAY_10), MONDAY_10, 420)  # 21x the Sunday hours, as usual
    assert find({"chat": series}, MONDAY_10, LIMITS) == []


def test_it_finds_the_seeds_weekend_surge_against_earlier_weekends() -> None:
    saturday = datetime(2026, 11, 21, 14, tzinfo=UTC)
    series = with_hour(history(saturday), saturday, 150)  # 7.5x a usual Saturday afternoon
    assert kinds(find({"smart-reply": series}, saturday, LIMITS)) == [("volume_spike", "critical")]


def test_it_lets_quiet_features_be() -> None:
    sunday = datetime(2026, 11, 22, 3, tzinfo=UTC)
    series = with_hour(history(sunday), sunday, 29)  # far above ~20, but under the minimum
    assert find({"tiny": series}, sunday, LIMITS) == []


def test_it_finds_a_jump_in_cost_per_request() -> None:
    doubled = with_hour(history(MONDAY_10), MONDAY_10, 400, cost="0.021")
    higher = with_hour(history(MONDAY_10), MONDAY_10, 400, cost="0.016")
    assert ("cost_per_request", "critical") in kinds(find({"chat": doubled}, MONDAY_10, LIMITS))
    assert ("cost_per_request", "warning") in kinds(find({"chat": higher}, MONDAY_10, LIMITS))


def test_it_finds_a_cache_hit_rate_drop() -> None:
    dropped = with_hour(history(MONDAY_10), MONDAY_10, 400, cache=0.35)
    sagging = with_hour(history(MONDAY_10), MONDAY_10, 400, cache=0.5)
    never_cached = with_hour(history(MONDAY_10, cache=0.1), MONDAY_10, 400, cache=0.1)
    assert kinds(find({"rag": dropped}, MONDAY_10, LIMITS)) == [("cache_hit_rate", "critical")]
    assert kinds(find({"rag": sagging}, MONDAY_10, LIMITS)) == [("cache_hit_rate", "warning")]
    assert find({"rag": never_cached}, MONDAY_10, LIMITS) == []


def test_it_calls_a_new_expensive_model_drift() -> None:
    series = history(MONDAY_10)
    series.hours[MONDAY_10] = Stats(400, Decimal("4"), 400_000, 80_000, 280_000)
    series.models["openai/gpt-4o-mini"][MONDAY_10] = Stats(
        380, Decimal("3.8"), 380_000, 76_000, 266_000
    )
    series.models["openai/gpt-4o"] = {MONDAY_10: Stats(20, Decimal("3.3"), 20_000, 4_000, 14_000)}
    series.models["openai/gpt-4.1-nano"] = {
        MONDAY_10: Stats(5, Decimal("0.01"), 5_000, 1_000, 3_500)
    }
    drift = {
        (f.model, f.severity)
        for f in find({"chat": series}, MONDAY_10, LIMITS)
        if f.kind == "model_drift"
    }
    assert drift == {("openai/gpt-4o", "critical"), ("openai/gpt-4.1-nano", "warning")}


def test_it_starts_cold_features_from_the_days_they_have() -> None:
    series = history(MONDAY_10, weeks=1)  # exactly one week: no earlier same-hour-of-week yet
    for hour in list(series.hours):
        if hour < MONDAY_10 - timedelta(days=3):
            del series.hours[hour]
    spiked = with_hour(series, MONDAY_10, 3000)
    assert kinds(find({"new": spiked}, MONDAY_10, LIMITS)) == [("volume_spike", "critical")]
