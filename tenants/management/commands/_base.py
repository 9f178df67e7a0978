"""Shared lookups for management commands: clear errors and a non-zero exit on bad input."""

from __future__ import annotations

from django.core.management.base import CommandError

from tenants.models import Team, Tenant


def get_tenant(slug: str) -> Tenant:
    try:
        return Tenant.objects.get(slug=slug)
    except Tenant.DoesNotExist:
        raise CommandError(f"tenant {slug!r} does not exist") from None


def get_team(tenant: Tenant, slug: str) -> Team:
    try:
        return Team.objects.for_tenant(tenant).get(slug=slug)
    except Team.DoesNotExist:
        raise CommandError(f"team {slug!r} does not exist in tenant {tenant.slug!r}") from None
