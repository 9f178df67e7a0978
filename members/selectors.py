"""Reads for the members page: a tenant's members, whether each is invited or locked out."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from members.lockout import username_key
from tenants.models import Membership, Role, Tenant


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    invited: bool  # has not set a password yet
    locked_out: bool


def members_of(tenant: Tenant) -> list[MemberRow]:
    rows = list(
        Membership.objects.for_tenant(tenant).select_related("user").order_by("user__username")
    )
    failures = cache.get_many([username_key(m.user.get_username()) for m in rows])
    return [
        MemberRow(
            membership=m,
            invited=not m.user.has_usable_password(),
            locked_out=failures.get(username_key(m.user.get_username()), 0)
            >= settings.LOGIN_FAILURE_LIMIT,
        )
        for m in rows
    ]


def admin_count(tenant: Tenant) -> int:
    return Membership.objects.for_tenant(tenant).filter(role=Role.ADMIN).count()
