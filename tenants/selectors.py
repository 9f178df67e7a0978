"""Reads for tenants, teams, members and keys."""

from __future__ import annotations

import hmac

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from tenants import keycache
from tenants.models import ApiKey, Membership, Team, Tenant
from tenants.services import KEY_PREFIX, hash_secret


def api_key_from_token(token: str) -> ApiKey | None:
    """The live key for a `cb_<prefix>_<secret>` token, or None (unknown, malformed, revoked)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    digest = hash_secret(token)
    # None while this process cannot tell whether a key was revoked (Redis unreachable):
    # then the database answers, never a cached key.
    generation = keycache.generation()
    if generation is not None:
        cached = keycache.get(digest, generation)
        if cached is not None:
            return cached
    # Looking up by the public prefix is the one query a key has no tenant for yet.
    key = (
        ApiKey.unscoped_all_tenants.select_related("tenant", "team")
        .filter(prefix=parts[1], revoked_at__isnull=True)
        .first()
    )
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(parts[2])):
        return None
    if generation is not None:
        keycache.put(digest, key, generation)
    return key


def memberships_of(user: AbstractBaseUser | AnonymousUser) -> list[Membership]:
    if not user.is_authenticated:
        return []
    # A person's memberships span tenants by design: this lists the tenants they may enter.
    rows = Membership.unscoped_all_tenants.select_related("tenant").filter(user=user)
    return list(rows.order_by("tenant__slug"))


def team_ids_by_slug(tenant: Tenant | int) -> dict[str, int]:
    return dict(Team.objects.for_tenant(tenant).values_list("slug", "id"))


def get_tenant(slug: str) -> Tenant:
    return Tenant.objects.get(slug=slug)


def api_key_of(tenant: Tenant, prefix: str) -> ApiKey | None:
    """`tenant`'s key with this prefix, revoked or not; None when it has none."""
    return ApiKey.objects.for_tenant(tenant).filter(prefix=prefix).first()
