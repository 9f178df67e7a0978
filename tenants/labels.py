"""Team labels: how a `team_pk` is named on every page, CSV, FOCUS row and metric.

Rollup rows and invoices point at their team by `team_pk` (`NO_TEAM` for usage that no team
owns), not by a foreign key: usage outlives the team it was sent for. Every reader turns a
`team_pk` into its label here, and a label from a link or a filter back into a `team_pk`:

- a team: its slug;
- `NO_TEAM`: `UNALLOCATED`, "(unallocated)";
- a team deleted after its usage was rolled up: `deleted-team-<pk>`.

Why a deleted team gets a label of its own instead of `UNALLOCATED`: that spend was owned by
a team, and folding it into the unallocated line would misstate what nobody owns (the line an
admin may share out over the other teams, and that finance chases); keyed by the primary key,
two deleted teams never merge with each other either. It is also the slug that invoices of
deleted teams have always carried, so an invoice sent before and the pages of today agree.
`create_team` refuses slugs of this form, so a label never names two teams.

A finalized invoice keeps the team slug, name and cost center it was generated with (its
snapshot); this module names what is read from the rollups now and fills those snapshots.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from core.teams import NO_TEAM, UNALLOCATED
from tenants.models import Team, Tenant

DELETED_TEAM = "deleted-team-{pk}"
_DELETED = re.compile(r"deleted-team-([0-9]+)")


def deleted_team_label(pk: int) -> str:
    return DELETED_TEAM.format(pk=pk)


def is_reserved_slug(slug: str) -> bool:
    """Slugs a team may not take: they name deleted teams (and `UNALLOCATED` is no slug)."""
    return _DELETED.fullmatch(slug) is not None


@dataclass(frozen=True)
class TeamLabels:
    """The labels of one tenant's teams (or, for /metrics, of every tenant's), read in one query.

    Build it once per page or request and pass it to whatever names teams: looking a label up
    costs no query.
    """

    teams: dict[int, Team]  # the teams that exist, by primary key
    tenant_id: int | None  # None: every tenant's teams (labels only; see `pk`)

    @classmethod
    def of(cls, tenant: Tenant | int) -> TeamLabels:
        teams = Team.objects.for_tenant(tenant)
        return cls._from(teams, tenant if isinstance(tenant, int) else tenant.pk)

    @classmethod
    def of_every_tenant(cls) -> TeamLabels:
        # Operator-wide by design: /metrics labels every tenant's series for the operator.
        return cls._from(Team.unscoped_all_tenants.only("id", "slug"), None)

    @classmethod
    def _from(cls, teams: Iterable[Team], tenant_id: int | None) -> TeamLabels:
        return cls({t.pk: t for t in teams}, tenant_id)

    def label(self, team_pk: int) -> str:
        """The team's slug, `UNALLOCATED` for `NO_TEAM`, `deleted-team-<pk>` for a deleted team."""
        if team_pk == NO_TEAM:
            return UNALLOCATED
        team = self.teams.get(team_pk)
        return team.slug if team is not None else deleted_team_label(team_pk)

    def name(self, team_pk: int) -> str:
        """What people read beside the label: the team's name, or what the label stands for."""
        if team_pk == NO_TEAM:
            return "Unallocated"
        team = self.teams.get(team_pk)
        return team.name if team is not None else f"Deleted team {team_pk}"

    def cost_center(self, team_pk: int) -> str:
        """The team's cost center; blank for unallocated usage and for a deleted team."""
        team = self.teams.get(team_pk)
        return team.cost_center if team is not None else ""

    def team(self, team_pk: int) -> Team | None:
        """The team itself, when it still exists."""
        return self.teams.get(team_pk)

    def pk(self, label: str) -> int | None:
        """The `team_pk` a label names (the reverse of `label`), or None for no team of ours.

        Only one tenant's labels can be reversed: slugs repeat across tenants.
        """
        if self.tenant_id is None:
            raise ValueError("labels of every tenant cannot be reversed: slugs repeat")
        if label == UNALLOCATED:
            return NO_TEAM
        found = self._by_slug.get(label)
        if found is not None:
            return found
        deleted = _DELETED.fullmatch(label)
        if deleted is None:
            return None
        pk = int(deleted.group(1))
        return pk if pk != NO_TEAM and pk not in self.teams else None

    def slugs(self) -> list[str]:
        """The labels of the teams that exist, sorted: what a team filter offers."""
        return sorted(t.slug for t in self.teams.values())

    @cached_property
    def _by_slug(self) -> dict[str, int]:
        return {t.slug: pk for pk, t in self.teams.items()}
