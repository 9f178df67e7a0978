"""The METRICS_* settings, checked: a typo must fail loudly, not silently drop a label."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Label name -> the rollup columns its value is derived from (model_family: the tenant's
# family rules over the canonical model of provider and model).
LABEL_COLUMNS: dict[str, tuple[str, ...]] = {
    "tenant": ("tenant_id",),
    "team": ("team_pk",),
    "provider": ("provider",),
    "model": ("model",),
    "feature": ("feature",),
    "environment": ("environment",),
    "endpoint": ("endpoint",),
    "status": ("status",),  # the HTTP status class (rollups.statuses)
    "model_family": ("tenant_id", "provider", "model"),
}


@dataclass(frozen=True)
class MetricsSettings:
    labels: tuple[str, ...]
    max_series: int
    cache_seconds: float
    daily_budget_usd: Decimal | None


def _labels(raw: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    labels = tuple(raw)
    unknown = [label for label in labels if label not in LABEL_COLUMNS]
    if unknown or len(set(labels)) != len(labels):
        raise ImproperlyConfigured(
            f"METRICS_LABELS must be distinct names from {', '.join(LABEL_COLUMNS)}; got {labels}"
        )
    return labels


def _budget(raw: str) -> Decimal | None:
    if not raw:
        return None
    try:
        budget = Decimal(raw)
    except InvalidOperation as exc:
        raise ImproperlyConfigured(f"METRICS_DAILY_BUDGET_USD is not a number: {raw!r}") from exc
    if not budget.is_finite() or budget < 0:
        raise ImproperlyConfigured(f"METRICS_DAILY_BUDGET_USD must be >= 0, got {raw!r}")
    return budget


def metrics_settings() -> MetricsSettings:
    max_series = int(settings.METRICS_MAX_SERIES)
    if max_series < 1:
        raise ImproperlyConfigured(f"METRICS_MAX_SERIES must be at least 1, got {max_series}")
    return MetricsSettings(
        labels=_labels(settings.METRICS_LABELS),
        max_series=max_series,
        cache_seconds=max(0.0, float(settings.METRICS_CACHE_SECONDS)),
        daily_budget_usd=_budget(str(settings.METRICS_DAILY_BUDGET_USD or "")),
    )
