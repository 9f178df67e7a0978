"""How usage that belongs to no team is keyed and shown, in one place.

Rollups key their rows by `team_pk`, the team's id, with `NO_TEAM` for usage that no team
owns; every page, CSV, FOCUS row and metric shows such usage under `UNALLOCATED`.
"""

from __future__ import annotations

NO_TEAM = 0  # team_pk of usage that no team owns
UNALLOCATED = "(unallocated)"  # its label everywhere a team's label is shown
