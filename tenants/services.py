"""Writes for tenants, teams, members and API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import Actor, record
from tenants import keycache
from tenants.labels import is_reserved_slug
from tenants.models import ApiKey, Membership, Role, Scope, Team, Tenant

KEY_PREFIX = "cb"
LAST_USED_RESOLUTION = timedelta(seconds=60)


def create_tenant(slug: str, name: str = "", timezone_name: str = "UTC") -> Tenant:
    return Tenant.objects.create(slug=slug, name=name or slug, timezone=timezone_name)


def create_team(tenant: Tenant, slug: str, name: str = "", cost_center: str = "") -> Team:
    if is_reserved_slug(slug):
        raise ValueError(f"{slug!r} is reserved: it labels the spend of a deleted team")
    return Team.objects.create(tenant=tenant, slug=slug, name=name or slug, cost_center=cost_center)


@transaction.atomic
def add_member(
    tenant: Tenant,
    username: str,
    role: Role | str,
    password: str | None = None,
    *,
    actor: Actor = None,
) -> Membership:
    """Give `username` a role in `tenant`, creating the user if new (one role per tenant)."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username)
    if password or created:
        _set_password(user, password)
    before = Membership.objects.for_tenant(tenant).filter(user=user).first()
    membership, _ = Membership.objects.for_tenant(tenant).update_or_create(
        user=user, defaults={"role": Role(role), "tenant": tenant}
    )
    if before is None:
        record(tenant, actor, Action.MEMBER_ADDED, username, {"role": membership.role})
    elif before.role != membership.role:
        details = {"from": before.role, "to": membership.role}
        record(tenant, actor, Action.MEMBER_ROLE_CHANGED, username, details)
    return membership


def _set_password(user: AbstractBaseUser, password: str | None) -> None:
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()


def hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a fast hash is enough; nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def create_api_key(
    tenant: Tenant,
    *,
    team: Team | None = None,
    name: str = "",
    scope: Scope | str = Scope.INGEST,
    actor: Actor = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored or shown again."""
    prefix = secrets.token_hex(5)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        tenant=tenant,
        team=team,
        name=name,
        scope=Scope(scope),
        prefix=prefix,
        secret_hash=hash_secret(secret),
    )
    details = {"name": name, "scope": key.scope, "team": team.slug if team else ""}
    record(tenant, actor, Action.API_KEY_CREATED, f"{KEY_PREFIX}_{prefix}", details)
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


@transaction.atomic
def revoke_api_key(key: ApiKey, *, actor: Actor = None) -> None:
    """Revoke `key`: refused by this process at once, by every other within a second."""
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    record(
        key.tenant, actor, Action.API_KEY_REVOKED, f"{KEY_PREFIX}_{key.prefix}", {"name": key.name}
    )
    keycache.clear()  # this process, now, even before the commit
    # The others once committed: announced earlier, a process could read the key from the
    # database as still live, and cache it after it had emptied its cache.
    transaction.on_commit(keycache.announce_revocation)


def touch_api_key(key: ApiKey) -> None:
    """Record use at most once a minute per key, so ingest does not write a row per request."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.for_tenant(key.tenant_id).filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
