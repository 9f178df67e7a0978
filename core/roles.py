"""A member's role in a tenant, and which roles include which."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    FINANCE = "finance", "Finance"
    VIEWER = "viewer", "Viewer"


# Who may open what: finance also sees chargeback and invoices; admins everything.
ROLE_RANK = {Role.VIEWER: 0, Role.FINANCE: 1, Role.ADMIN: 2}


def role_allows(held: str, needed: Role) -> bool:
    return ROLE_RANK[Role(held)] >= ROLE_RANK[needed]
