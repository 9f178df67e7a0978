"""Number formatting that finance can read (dollars with cents, percentages, changes), the
unallocated label, and table rows and filter options built in Python."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from core.formats import change, change_class, compact, ms, pct, usd
from core.teams import UNALLOCATED
from dashboard import feature_pages

register = template.Library()


for _name, _format in (
    ("usd", usd), ("pct", pct), ("change", change), ("change_class", change_class),
    ("ms", ms), ("compact", compact),
):  # fmt: skip
    register.filter(_name, _format)


@register.filter
def latency_p(totals: object, q: float) -> float | None:
    """The q-quantile latency of a `Totals` in ms."""
    latency = getattr(totals, "latency", None)
    return latency(float(q)) if latency else None


@register.simple_tag
def unallocated() -> str:
    """The label of spend that no team owns: `{% unallocated %}`, or `{% unallocated as x %}`."""
    return UNALLOCATED


@register.simple_tag
def row_cells(
    rows: list[Any], dim: str, compact_view: bool, query: str, outcomes: bool = False
) -> SafeString:
    """The body rows of a top-list table, built in Python: a breakdown page can list hundreds
    of features, and a template loop costs ~0.1 ms a row. Every name is HTML-escaped."""
    if not rows:
        span = columns(dim, compact_view, outcomes)
        empty = f'<tr><td colspan="{span}" class="empty">Nothing in this period.</td></tr>'
        return mark_safe(empty)  # noqa: S308 - no client text in it
    # A feature's page fixes the feature and stacks by model unless asked otherwise.
    feature_query = _without(query, ("feature", "stack")) if dim == "feature" else ""
    return mark_safe(  # noqa: S308 - escaped in _cells
        "\n".join(_cells(r, dim, compact_view, query, feature_query) for r in rows)
    )


def columns(dim: str, compact_view: bool, outcomes: bool) -> int:
    """How many columns `_rows.html` heads a table with (the name, spend, share, change;
    a team's cost center, calls and tokens when not compact; the three outcome shares)."""
    full = 0 if compact_view else 2 + (dim == "team")
    return 4 + full + (3 if outcomes else 0)


def _without(query: str, names: tuple[str, ...]) -> str:
    return urlencode([(k, v) for k, v in parse_qsl(query) if k not in names])


def _link(r: Any, dim: str, query: str, feature_query: str) -> str | None:
    if dim == "team" and r.extra.get("team"):
        return f"{reverse('team', args=[r.extra['team'].slug])}?{query}"
    feature = r.extra.get("feature") if dim == "feature" else None
    if feature and feature_pages.linkable(feature):
        href = feature_pages.path(feature)
        return f"{href}?{feature_query}" if feature_query else href
    return None


def _cells(r: Any, dim: str, compact_view: bool, query: str, feature_query: str = "") -> str:
    team = r.extra.get("team") if dim == "team" else None
    name = escape(r.label)
    link = _link(r, dim, query, feature_query)
    if link:
        name = f'<a href="{escape(link)}">{name}</a>'
    cells = [f"<td>{name}</td>"]
    if dim == "team" and not compact_view:
        cells.append(f"<td>{escape(team.cost_center if team and team.cost_center else '—')}</td>")
    cells += [
        f'<td class="num">{usd(r.cost)}</td>',
        f'<td class="num"><span class="bar" data-share="{r.share:.3f}"></span>{pct(r.share)}</td>',
        f'<td class="num change {change_class(r.change)}">{change(r.change)}</td>',
    ]
    if not compact_view:
        cells.append(f'<td class="num">{compact(r.requests)}</td>')
        cells.append(f'<td class="num">{compact(r.tokens)}</td>')
    if "outcomes" in r.extra:
        o = r.extra["outcomes"]
        shares = (o.errors, o.rate_limited, o.server_errors)
        cells += [f'<td class="num">{pct(s)}</td>' for s in shares]
    return f"<tr>{''.join(cells)}</tr>"


@register.simple_tag
def options(values: list[str], selected: str) -> SafeString:
    """A filter's <option>s, built in Python: a tenant can have hundreds of features."""
    return mark_safe(  # noqa: S308 - every value is escaped
        "".join(
            f"<option{' selected' if v == selected else ''}>{escape(v)}</option>" for v in values
        )
    )
