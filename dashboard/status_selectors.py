"""How the calls of each value of a dimension ended: the shares of errors, rate limiting
(429) and server errors (5xx), for the endpoints page. Read from the rollups only."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.db.models import Q, QuerySet, Sum

from dashboard.filters import Filters
from dashboard.rows import FULL, rollups, tag_rows
from dashboard.selectors import DIM_FIELD, Row
from rollups.statuses import status_class
from tenants.labels import TeamLabels
from tenants.models import Tenant

# The classes the rollups keep a rate-limited call and a server error in, as they classify
# them: a change to the classes moves these shares with it.
RATE_LIMITED = status_class(429)
SERVER_ERROR = status_class(500)


@dataclass(frozen=True)
class Outcomes:
    """Shares of one value's calls; None when it had no calls."""

    errors: float | None
    rate_limited: float | None
    server_errors: float | None


def _share(part: int | None, whole: int | None) -> float | None:
    return (part or 0) / whole if whole else None


def outcomes(tenant: Tenant, f: Filters, teams: TeamLabels, dim: str) -> dict[str, Outcomes]:
    """Per value of `dim` (as the pages label it: "(none)" for blank), in one query.

    Grouping by `dim` while counting status classes needs both columns together, which only
    the full rollups hold (each slice keeps one dimension).
    """
    return outcomes_of(rollups(tenant, f, teams, FULL), DIM_FIELD[dim])


def tag_outcomes(tenant: Tenant, f: Filters, teams: TeamLabels, key: str) -> dict[str, Outcomes]:
    """`outcomes` per value of one chosen tag key: the tag slice that keeps status classes
    holds each value's calls per class (a tag slice keeps its value too), so an unfiltered
    page reads one row per value, day and class, not the full tag rollups."""
    return outcomes_of(tag_rows(tenant, f, teams, key, "status"), "tag_value")


def outcomes_of(rows: QuerySet[Any], key: str) -> dict[str, Outcomes]:
    rows = rows.values(key).annotate(
        n=Sum("requests"),
        e=Sum("errors"),
        r=Sum("requests", filter=Q(status=RATE_LIMITED)),
        s=Sum("requests", filter=Q(status=SERVER_ERROR)),
    )
    return {
        (r[key] or "(none)"): Outcomes(
            _share(r["e"], r["n"]), _share(r["r"], r["n"]), _share(r["s"], r["n"])
        )
        for r in rows.order_by()
    }


def with_outcomes(rows: list[Row], found: dict[str, Outcomes]) -> list[Row]:
    """The top-list rows carrying their outcome shares (`extra["outcomes"]`)."""
    none = Outcomes(None, None, None)
    return [replace(r, extra={**r.extra, "outcomes": found.get(r.key, none)}) for r in rows]
