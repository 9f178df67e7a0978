"""A comparison as the API answers it and as the page's chart draws it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.charts import FONT, PALETTE, text
from core.money import decimal_text
from pricing.catalog_updates import catalog_data_date
from whatif.selectors import Comparison, Priced

PCT_PLACES = 2
# Projections (a month from a period, a forecast) are divisions: kept to 10 decimals, as
# per-event costs are.
PROJECTED_PLACES = 10


def _pct(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value, PCT_PLACES)


def notes(p: Priced) -> list[str]:
    """Why a candidate's figure is not exact, in words; empty when it is."""
    out = []
    if p.tier_calls:
        out.append(
            f"{p.tier_calls} calls may exceed the first price tier; they are priced at the "
            "base tier (tiers apply per call, rollups keep sums)"
        )
    if p.unpriced_calls:
        out.append(f"{p.unpriced_calls} calls fall where this model has no price; counted as $0")
    if p.split_calls:
        out.append(f"{p.split_calls} calls fall in hours where the price changes mid-hour")
    return out


def candidate_row(c: Comparison, p: Priced, forecast: Decimal) -> dict[str, Any]:
    delta = p.cost - c.actual
    return {
        "provider": p.candidate.provider,
        "model": p.candidate.model,
        "cost_usd": decimal_text(p.cost),
        "monthly_cost_usd": decimal_text(c.monthly(p.cost), PROJECTED_PLACES),
        "month_forecast_usd": decimal_text(forecast, PROJECTED_PLACES),
        "delta_usd": decimal_text(delta),
        "delta_pct": _pct(c.delta_pct(p.cost)),
        "price_source": sorted(p.sources),
        "exact": p.exact,
        "notes": notes(p),
    }


def answer(c: Comparison) -> dict[str, Any]:
    return {
        "from": c.f.start.isoformat(),
        "to": c.f.end.isoformat(),
        "requests": c.requests,
        "catalog": catalog_data_date().label,
        "actual": {
            "cost_usd": decimal_text(c.actual),
            "monthly_cost_usd": decimal_text(c.monthly(c.actual), PROJECTED_PLACES),
            "month_forecast_usd": decimal_text(c.outlook.actual, PROJECTED_PLACES),
        },
        "candidates": [
            candidate_row(c, p, forecast)
            for p, forecast in zip(c.candidates, c.outlook.forecasts, strict=True)
        ],
    }


def _x(keys: list[date | datetime]) -> list[str]:
    return [k.isoformat() for k in keys]


def chart(c: Comparison) -> dict[str, Any]:
    """Actual spend (bars) and each candidate (lines) per day, or per hour for a short range."""
    keys = sorted(set(c.actual_series).union(*(p.series for p in c.candidates)))
    x = _x(keys)

    def y(series: dict[Any, Decimal]) -> list[str]:
        return [f"{series.get(k, Decimal(0)):.6f}" for k in keys]

    data = [
        {"type": "bar", "name": "Actual", "x": x, "y": y(c.actual_series),
         "marker": {"color": PALETTE[-1]}},
    ] + [
        {"type": "scatter", "mode": "lines+markers", "name": text(p.candidate.label), "x": x,
         "y": y(p.series), "line": {"color": PALETTE[i % (len(PALETTE) - 1)]}}
        for i, p in enumerate(c.candidates)
    ]  # fmt: skip
    layout = {
        "title": {"text": "Actual spend and the same usage on each model", "x": 0,
                  "font": {"size": 14}},
        "font": FONT,
        "margin": {"l": 56, "r": 16, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "yaxis": {"title": {"text": "USD"}, "rangemode": "tozero", "automargin": True},
        "xaxis": {"type": "date"},
        "hovermode": "x unified",
    }  # fmt: skip
    return {"data": data, "layout": layout}
