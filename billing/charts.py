"""Plotly figures for the chargeback page (plain dicts, embedded with json_script).

Labels come from clients, so they go through `dashboard.charts.text` (HTML-escaped); money
goes out as decimal strings, which Plotly plots as numbers.
"""

from __future__ import annotations

from typing import Any

from billing.selectors import Chargeback, Spend
from core.charts import FONT, PALETTE, text


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": text(title), "x": 0, "font": {"size": 14}},
        "font": FONT,
        "margin": {"l": 56, "r": 16, "t": 40, "b": 40},
        "xaxis": {"title": {"text": "USD"}, "rangemode": "tozero"},
        "yaxis": {"automargin": True},
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
        **extra,
    }


def spend_bars(title: str, rows: list[Spend], limit: int = 15) -> dict[str, Any]:
    """Horizontal bars of the largest rows' invoiced amounts."""
    ordered = list(reversed(rows[:limit]))
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": [text(r.key) for r in ordered],
        "x": [f"{r.amount:.2f}" for r in ordered],
        "marker": {"color": PALETTE[0]},
        "hovertemplate": "%{y}: $%{x:,.2f}<extra></extra>",
    }
    return {"data": [trace], "layout": _layout(title, showlegend=False)}


def chargeback_figures(page: Chargeback) -> dict[str, Any]:
    """The whole tenant: spend by team and by model; one team: by feature and by model."""
    if not page.teams:
        return {}
    first = ("by_feature", "Spend by feature", page.features) if page.team else None
    key, title, rows = first or ("by_team", "Spend by team", page.teams)
    return {key: spend_bars(title, rows), "by_model": spend_bars("Spend by model", page.models)}
