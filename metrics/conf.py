"""The METRICS_* settings, checked: a typo must fail loudly, not silently drop a label."""

from __future__ import annotations

import re
from collections.abc import Sequence
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

# `tag_<key>`: the value of tag key <key> from the tag rollups, for tenants that chose <key>
# as a tag dimension. A Prometheus label name, so the key is letters, digits and underscores.
TAG_LABEL_PREFIX = "tag_"
TAG_LABEL = re.compile(r"tag_[A-Za-z0-9_]{1,128}")
TAG_COLUMNS = ("tag_value",)


def label_columns(label: str) -> tuple[str, ...]:
    return TAG_COLUMNS if label.startswith(TAG_LABEL_PREFIX) else LABEL_COLUMNS[label]


def tag_key(labels: Sequence[str]) -> str | None:
    """The tag key of the labels' `tag_<key>` label, if they have one."""
    tagged = [label for label in labels if label.startswith(TAG_LABEL_PREFIX)]
    return tagged[0].removeprefix(TAG_LABEL_PREFIX) if tagged else None


@dataclass(frozen=True)
class MetricsSettings:
    labels: tuple[str, ...]
    max_series: int
    cache_seconds: float
    daily_budget_usd: Decimal | None


def _labels(raw: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    labels = tuple(raw)
    unknown = [n for n in labels if n not in LABEL_COLUMNS and not TAG_LABEL.fullmatch(n)]
    tags = [label for label in labels if label.startswith(TAG_LABEL_PREFIX)]
    # One tag key at most: each key has its own tag rollups, never crossed with another's.
    if unknown or len(set(labels)) != len(labels) or len(tags) > 1:
        raise ImproperlyConfigured(
            f"METRICS_LABELS must be distinct names from {', '.join(LABEL_COLUMNS)} and at "
            f"most one tag_<key> (letters, digits, _); got {labels}"
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
