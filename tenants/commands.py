"""What management commands that work per tenant share."""

from __future__ import annotations

from django.core.management.base import CommandError

from tenants.models import Tenant


def tenants_from_option(slug: str | None) -> list[Tenant]:
    """`--tenant SLUG`: that tenant, or every tenant (by slug) when the option is left out."""
    if slug is None:
        return list(Tenant.objects.order_by("slug"))
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"tenant {slug!r} does not exist")
    return [tenant]
