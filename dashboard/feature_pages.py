"""Which features have a page, and its address: `/features/<name>/`.

Feature names are free text from clients (up to 128 characters: slashes, spaces, `?`,
`%`, any script), so the address percent-encodes the whole name, slashes included. A `/`
sent as `%2F` keeps the name one path segment to the browser, which would otherwise fold a
name like `a/../b` into another path; the server decodes it back before routing. Only the
names `.` and `..` cannot be one segment: a browser folds them, encoded or not, into the
path before them, so they get no link (their page answers clients that do not fold).
"""

from __future__ import annotations

from urllib.parse import quote

from django.urls import reverse

from core.query import MAX_TEXT
from rollups.models import LifetimeRollup
from tenants.models import Tenant


def known(tenant: Tenant, name: str) -> bool:
    """Whether the tenant ever had a call of this feature (a blank feature has no page).

    A name no call can carry (too long, or holding a NUL, which PostgreSQL refuses in a
    query) is answered here, without asking the database.
    """
    if not name or len(name) > MAX_TEXT or "\x00" in name:
        return False
    return LifetimeRollup.objects.for_tenant(tenant).filter(feature=name).exists()


def path(name: str) -> str:
    """The feature page's path, without a query string."""
    return f"{reverse('features')}{quote(name, safe='')}/"


def linkable(name: str) -> bool:
    """Whether a browser keeps the feature's path as built (see the module's note)."""
    return name not in (".", "..")
