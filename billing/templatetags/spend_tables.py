"""The chargeback page's table rows, built in Python: a month can hold hundreds of features
and a tag key hundreds of values, and a template loop costs ~0.1 ms a row (at 50 teams, 50
cost centers and 200 features that was most of the page's time). Every name is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from django import template
from django.utils.safestring import SafeString, mark_safe

from core.formats import change, change_class, compact, pct, usd

register = template.Library()


@register.simple_tag
def spend_cells(
    rows: Sequence[Any], keep: str, kind: str = "", allocating: bool = False
) -> SafeString:
    """`<tr>`s of `billing.selectors.Spend` rows; `kind` "teams" links each team to its
    drill-down and adds its cost center, "centers" lists each cost center's teams."""
    if not rows:
        span = 6 + (kind in ("teams", "centers")) + bool(allocating)
        return mark_safe(f'<tr><td colspan="{span}" class="empty">Nothing in this month.</td></tr>')  # noqa: S308
    return mark_safe("\n".join(_spend_row(r, keep, kind, allocating) for r in rows))  # noqa: S308


def _spend_row(r: Any, keep: str, kind: str, allocating: bool) -> str:
    name = escape(r.key)
    if kind == "teams":
        href = f"?{keep}&team={quote(r.key, safe='/')}"
        name = f'<a href="{escape(href)}">{name}</a>'
    if r.team is not None and r.team.name != r.key:
        name += f' <small class="note">{escape(r.team.name)}</small>'
    cells = [f"<td>{name}</td>"]
    if kind == "teams":
        cells.append(f"<td>{escape(r.cost_center or '—')}</td>")
    if kind == "centers":
        cells.append(f"<td>{escape(r.label)}</td>")
    cells.append(f'<td class="num">{usd(r.amount)}</td>')
    if allocating:
        cells.append(f'<td class="num">{usd(r.allocated)}</td>')
    return f"<tr>{''.join(cells)}{_shared_cells(r)}</tr>"


@register.simple_tag
def tag_cells(rows: Sequence[Any]) -> SafeString:
    """`<tr>`s of a cost allocation tag's rows (`billing.tag_chargeback`)."""
    if not rows:
        return mark_safe('<tr><td colspan="6" class="empty">Nothing in this month.</td></tr>')
    return mark_safe(  # noqa: S308 - escaped here
        "\n".join(
            f'<tr><td>{escape(r.key)}</td><td class="num">{usd(r.amount)}</td>{_shared_cells(r)}</tr>'
            for r in rows
        )
    )


def _shared_cells(r: Any) -> str:
    """Share (with its bar), change against the previous month, calls and tokens."""
    return (
        f'<td class="num"><span class="bar" data-share="{r.share:.3f}"></span>{pct(r.share)}</td>'
        f'<td class="num change {change_class(r.change)}">{change(r.change)}</td>'
        f'<td class="num">{compact(r.requests)}</td><td class="num">{compact(r.tokens)}</td>'
    )
