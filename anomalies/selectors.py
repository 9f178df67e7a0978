"""Anomaly reads: the lists and the observed-against-baseline chart of the anomalies page."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from anomalies.detection import HOUR, FeatureSeries, Stats, volume_baseline
from anomalies.models import ACTIVE, Anomaly, Kind
from anomalies.services import load_series
from core.charts import PALETTE, text
from core.money import decimal_text
from tenants.models import Tenant

CHART_DAYS = 7


def active(tenant: Tenant) -> list[Anomaly]:
    return list(Anomaly.objects.for_tenant(tenant).filter(status__in=ACTIVE))


def past(tenant: Tenant, limit: int = 50) -> list[Anomaly]:
    return list(Anomaly.objects.for_tenant(tenant).exclude(status__in=ACTIVE)[:limit])


def _metric(kind: str, s: Stats) -> float | str | None:
    if kind == Kind.COST_PER_REQUEST:
        # Money goes to the chart as a decimal string, as on the dashboards.
        return f"{s.cost / s.requests:.6f}" if s.requests else None
    if kind == Kind.CACHE_HIT_RATE:
        return round(s.cache_read_tokens / s.input_tokens * 100, 2) if s.input_tokens else None
    return s.requests


def chart(tenant: Tenant, anomaly: Anomaly) -> dict[str, Any]:
    """The feature's metric around the anomaly; for volume, the baseline band (mean +- 2 standard deviations)."""
    end = max(anomaly.last_hour, anomaly.first_hour) + timedelta(hours=6)
    start = end - timedelta(days=CHART_DAYS)
    series = load_series(tenant, start - timedelta(days=28), end).get(
        anomaly.feature, FeatureSeries()
    )
    hours = [start + HOUR * i for i in range(CHART_DAYS * 24)]
    if anomaly.kind == Kind.MODEL_DRIFT:
        return _drift_chart(anomaly, series, hours)
    observed = [_metric(anomaly.kind, series.hours.get(h, Stats())) for h in hours]
    data = [_band(series, hours)] if anomaly.kind == Kind.VOLUME_SPIKE else []
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Observed",
            "x": [h.isoformat() for h in hours],
            "y": observed,
            "line": {"color": PALETTE[0]},
        }
    )
    data.append(_marker(anomaly))
    return {"data": [d for d in data if d], "layout": _layout(anomaly)}


def _band(series: FeatureSeries, hours: list[datetime]) -> dict[str, Any]:
    upper, lower, x = [], [], []
    for h in hours:
        b = volume_baseline(series, h)
        if b is None:
            continue
        x.append(h.isoformat())
        upper.append(round(b.mean + 2 * b.std, 2))
        lower.append(round(max(b.mean - 2 * b.std, 0), 2))
    return {
        "type": "scatter", "mode": "lines", "name": "Usual range (hour of week)", "x": x + x[::-1],
        "y": upper + lower[::-1], "fill": "toself", "line": {"width": 0}, "fillcolor": "rgba(47,91,211,0.15)",
        "hoverinfo": "skip",
    }  # fmt: skip


def _marker(anomaly: Anomaly) -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "markers", "name": "Anomaly", "x": [anomaly.first_hour.isoformat()],
        "y": [decimal_text(anomaly.observed * (100 if anomaly.kind == Kind.CACHE_HIT_RATE else 1))],
        "marker": {"color": PALETTE[3], "size": 12, "symbol": "x"},
    }  # fmt: skip


def _drift_chart(anomaly: Anomaly, series: FeatureSeries, hours: list[datetime]) -> dict[str, Any]:
    data = [
        {
            "type": "bar",
            "name": text(model),
            "x": [h.isoformat() for h in hours],
            "y": [per_hour.get(h, Stats()).requests for h in hours],
        }
        for model, per_hour in series.models.items()
        if any(h in per_hour for h in hours)
    ]
    layout = _layout(anomaly)
    layout["barmode"] = "stack"
    return {"data": data, "layout": layout}


def _layout(anomaly: Anomaly) -> dict[str, Any]:
    y_title = {"cost_per_request": "USD per call", "cache_hit_rate": "cache hit rate %"}.get(
        anomaly.kind, "calls per hour"
    )
    return {
        "title": {
            "text": text(f"{anomaly.get_kind_display()}: {anomaly.feature}"),
            "x": 0,
            "font": {"size": 14},
        },
        "margin": {"l": 56, "r": 16, "t": 36, "b": 36},
        "height": 300,
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
    }


def ratio_text(anomaly: Anomaly) -> str:
    if anomaly.baseline and anomaly.kind in (Kind.VOLUME_SPIKE, Kind.COST_PER_REQUEST):
        return f"{anomaly.observed / anomaly.baseline:.1f}x"
    return "—" if not anomaly.baseline else f"{anomaly.observed / Decimal(1):.0%}"
