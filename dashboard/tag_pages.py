"""What a tag page shows: one chosen tag key's values by spend, from that key's tag rollups
under the page's filters. Keys are the tenant's own (`rollups.tags.chosen`)."""

from __future__ import annotations

from dataclasses import replace

from django.db.models import F

from dashboard.filters import Filters
from dashboard.rows import tag_rows
from dashboard.selectors import Row, ranked, top_sums
from dashboard.status_selectors import tag_outcomes, with_outcomes
from rollups.models import TagDimension
from rollups.tags import chosen
from tenants.labels import TeamLabels
from tenants.models import Tenant


def dimension(tenant: Tenant, key: str) -> TagDimension | None:
    """The tenant's chosen tag key of that name, or None (another tenant's keys included)."""
    return next((d for d in chosen(tenant) if d.key == key), None)


def tag_top(tenant: Tenant, f: Filters, teams: TeamLabels, key: str) -> list[Row]:
    """Every value of `key` spent on in the period ("(none)" and "(other)" included), with
    share, change vs before and the shares of errors, 429s and 5xx."""
    span = replace(f, start=f.previous().start)
    rows = tag_rows(tenant, span, teams, key).values("tag_value").annotate(**top_sums(f))
    current = [r for r in rows.order_by(F("c").desc(nulls_last=True)) if r["c"] is not None]
    return with_outcomes(ranked(current, "tag", teams, None), tag_outcomes(tenant, f, teams, key))
