"""The only write to the audit log: `record`. There is no update or delete, on purpose."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models

from audit.models import Action, AuditEntry

# Who did it: a signed-in user, a label ("manage.py", "api key cb_1a2b3c4d5e"), or None for
# Costboard itself (scheduled jobs).
Actor = AbstractBaseUser | AnonymousUser | str | None
SYSTEM = "system"


def actor_label(actor: Actor) -> str:
    if isinstance(actor, AbstractBaseUser):
        return actor.get_username()
    if isinstance(actor, str) and actor:
        return actor
    return SYSTEM


def record(
    tenant: models.Model,
    actor: Actor,
    action: Action,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. Call it inside the transaction of the change it describes, so the
    entry exists exactly when the change does."""
    user = actor if isinstance(actor, AbstractBaseUser) else None
    entry = AuditEntry(
        tenant_id=tenant.pk,
        actor_id=user.pk if user is not None else None,
        actor_label=actor_label(actor)[:200],
        action=Action(action),
        target=target[:300],
        details=details or {},
    )
    entry.save()
    return entry
