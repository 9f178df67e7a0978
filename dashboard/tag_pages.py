"""What a tag page shows: one chosen tag key's values by spend, from that key's tag rollups
under the page's filters. Keys are the tenant's own (`rollups.tags.chosen`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.db.models import F

from dashboard.filters import Filters, TagFilter
from dashboard.rows import tag_rows
from dashboard.selectors import Row, ranked, top_sums
from dashboard.status_selectors import tag_outcomes, with_outcomes
from rollups.models import NO_TAG_LABEL, OTHER_TAG_VALUE, TagDimension, TagValue
from rollups.tags import chosen
from tenants.labels import TeamLabels
from tenants.models import Tenant


def dimension(tenant: Tenant, key: str) -> TagDimension | None:
    """The tenant's chosen tag key of that name, or None (another tenant's keys included)."""
    return next((d for d in chosen(tenant) if d.key == key), None)


def tag_top(tenant: Tenant, f: Filters, teams: TeamLabels, key: str) -> list[Row]:
    """Every value of `key` spent on in the period ("(none)" and "(other)" included), with
    share, change vs before and the shares of errors, 429s and 5xx."""
    current = _spent(tenant, f, teams, key)
    return with_outcomes(ranked(current, "tag", teams, None), tag_outcomes(tenant, f, teams, key))


def breakdowns(
    tenant: Tenant, f: Filters, teams: TeamLabels, limit: int = 8
) -> list[tuple[str, list[Row]]]:
    """Each chosen tag key with its top values under the page's filters, for the team and
    feature pages: one query per key, on the tag slice that keeps the filtered dimension
    (the page's team or feature), so one row per value and day. Under a tag filter only
    that key is listed: another key's rows cannot be narrowed by it (see `for_key`)."""
    keys = [key for key in f.tag_keys if f.tag is None or f.tag.key == key]
    return [(key, ranked(_spent(tenant, f, teams, key), "tag", teams, limit)) for key in keys]


def _spent(tenant: Tenant, f: Filters, teams: TeamLabels, key: str) -> list[dict[str, Any]]:
    """The sums of each value of `key` spent on in the period, most spent first."""
    span = replace(f, start=f.previous().start)
    rows = tag_rows(tenant, span, teams, key).values("tag_value").annotate(**top_sums(f))
    return [r for r in rows.order_by(F("c").desc(nulls_last=True)) if r["c"] is not None]


def for_key(f: Filters, key: str) -> Filters:
    """A key's page under a tag filter on another key: each key's rows count every call
    once, so the other key's filter cannot narrow them; it is left out, and said."""
    if f.tag is None or f.tag.key == key:
        return f
    note = f"{f.tag.param}: a filter on another tag key cannot narrow the values of {key}."
    return replace(f, tag=None, errors=(*f.errors, note))


# A key with more values than this gets a text box with suggestions, not a select.
SELECT_LIMIT = 50


@dataclass(frozen=True)
class TagChoice:
    """The filter bar's control for one chosen key: the values seen in the period."""

    key: str
    param: str
    values: list[str]
    selected: str

    @property
    def as_select(self) -> bool:
        return len(self.values) <= SELECT_LIMIT


def tag_choices(tenant: Tenant, f: Filters, keys: list[str]) -> list[TagChoice]:
    """Per chosen key, the values admitted on the period's days (`TagValue`: at most the
    per-day cap each, so this stays small), then "(none)" and "(other)"; the filtered
    value stays offered even where the period never saw it."""
    if not keys:
        return []
    seen: dict[str, set[str]] = {key: set() for key in keys}
    rows = TagValue.objects.for_tenant(tenant).filter(
        tag_key__in=keys, day__gte=f.first_day, day__lte=f.last_day
    )
    for key, value in rows.values_list("tag_key", "tag_value").distinct():
        seen[key].add(value)
    out = []
    for key in keys:
        selected = f.tag.value if f.tag and f.tag.key == key else ""
        values = sorted(seen[key] | ({selected} if selected else set()))
        values += [v for v in (NO_TAG_LABEL, OTHER_TAG_VALUE) if v not in values]
        out.append(TagChoice(key, TagFilter(key, "").param, values, selected))
    return out
