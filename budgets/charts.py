"""The budgets page's burn chart: cumulative spend, the limit, and the forecast to period end."""

from __future__ import annotations

from typing import Any

from budgets.selectors import BudgetView, spend_by_day
from core.charts import PALETTE, text
from core.money import decimal_text


def burn(view: BudgetView) -> dict[str, Any]:
    points = spend_by_day(view)
    start, end = view.status.period_start.isoformat(), view.status.period_end.isoformat()
    last = points[-1] if points else (view.status.period_start, view.status.spend_usd)
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Spend",
            "x": [p[0].isoformat() for p in points],
            "y": [f"{p[1]:.6f}" for p in points],
            "line": {"color": PALETTE[0]},
            "fill": "tozeroy",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Forecast",
            "x": [last[0].isoformat(), end],
            "y": [f"{last[1]:.6f}", f"{view.status.forecast_usd:.6f}"],
            "line": {"color": PALETTE[1], "dash": "dot"},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Budget",
            "x": [start, end],
            "y": [decimal_text(view.budget.amount_usd)] * 2,
            "line": {"color": PALETTE[3], "dash": "dash"},
        },
    ]
    layout = {
        "title": {"text": text(view.budget.name), "x": 0, "font": {"size": 14}},
        "margin": {"l": 56, "r": 16, "t": 36, "b": 36},
        "height": 260,
        "xaxis": {"type": "date", "range": [start, end]},
        "yaxis": {"title": {"text": "USD"}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
    }
    return {"data": data, "layout": layout}
