"""Plotly figure specs (plain dicts, serialised with json_script into the page).

Names come from clients, so every label is HTML-escaped (`core.charts.text`) before Plotly
sees it.
Money goes to the browser as decimal strings; Plotly plots numeric strings as numbers.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.charts import FONT, PALETTE, text
from dashboard.selectors import Totals


def _x(periods: list[datetime | date]) -> list[str]:
    return [p.isoformat() for p in periods]


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.6f}"


def _layout(title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": text(title), "x": 0, "font": {"size": 14}},
        "font": FONT,
        "margin": {"l": 56, "r": 16, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero", "automargin": True},
        "xaxis": {"type": "date"},
        "hovermode": "x unified",
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
        **extra,
    }


def stacked_spend(
    periods: list[datetime | date], series: dict[str, dict[Any, Decimal]], by: str
) -> dict[str, Any]:
    traces = [
        {
            "type": "bar",
            "name": text(name),
            "x": _x(periods),
            "y": [_money(values.get(p, Decimal(0))) for p in periods],
            "marker": {"color": PALETTE[i % len(PALETTE)]},
            "hovertemplate": "%{fullData.name}: $%{y:,.2f}<extra></extra>",
        }
        for i, (name, values) in enumerate(series.items())
    ]
    return {"data": traces, "layout": _layout(f"Spend by {by}", "USD", barmode="stack")}


def _line(name: str, x: list[str], y: list[Any], color: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": text(name),
        "x": x,
        "y": y,
        "line": {"color": color},
        **extra,
    }


def efficiency(periods: list[datetime | date], per: dict[Any, Totals]) -> dict[str, Any]:
    """Cost per request (left axis) with input and output tokens (right axis)."""
    x = _x(periods)
    rows = [per.get(p, Totals()) for p in periods]
    data = [
        _line("Cost per request", x, [_money(r.cost_per_request) for r in rows], PALETTE[0]),
        _line("Input tokens", x, [r.input_tokens for r in rows], PALETTE[1], yaxis="y2"),
        _line("Output tokens", x, [r.output_tokens for r in rows], PALETTE[2], yaxis="y2"),
    ]
    layout = _layout("Cost per request and tokens", "USD per request")
    layout["yaxis2"] = {
        "title": {"text": "tokens"},
        "overlaying": "y",
        "side": "right",
        "rangemode": "tozero",
        "automargin": True,
    }
    return {"data": data, "layout": layout}


def quality(periods: list[datetime | date], per: dict[Any, Totals]) -> dict[str, Any]:
    """Cache hit rate and error rate (left, %) with latency p50/p95 (right, ms)."""
    x = _x(periods)
    rows = [per.get(p, Totals()) for p in periods]
    pct = lambda v: None if v is None else round(v * 100, 2)  # noqa: E731
    data = [
        _line("Cache hit rate %", x, [pct(r.cache_hit_rate) for r in rows], PALETTE[2]),
        _line("Error rate %", x, [pct(r.error_rate) for r in rows], PALETTE[3]),
        _line("Latency p50 ms", x, [r.latency(0.5) for r in rows], PALETTE[4], yaxis="y2"),
        _line("Latency p95 ms", x, [r.latency(0.95) for r in rows], PALETTE[5], yaxis="y2"),
    ]
    layout = _layout("Cache, errors and latency", "%")
    layout["yaxis2"] = {
        "title": {"text": "ms"},
        "overlaying": "y",
        "side": "right",
        "rangemode": "tozero",
        "automargin": True,
    }
    return {"data": data, "layout": layout}


def share_bars(title: str, rows: list[Any]) -> dict[str, Any]:
    """Horizontal bars of the top rows' spend."""
    ordered = list(reversed(rows))
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": [text(r.label) for r in ordered],
            "x": [_money(r.cost) for r in ordered],
            "marker": {"color": PALETTE[0]},
            "hovertemplate": "%{y}: $%{x:,.2f}<extra></extra>",
        }
    ]
    layout = _layout(title, "")
    layout.update(
        xaxis={"title": {"text": "USD"}, "rangemode": "tozero"},
        yaxis={"automargin": True},
        showlegend=False,
    )
    return {"data": data, "layout": layout}
