"""The tenant a request acts for, as the base layer sees it.

The tenant middleware (`tenants.middleware`, wired in settings) puts a resolver on each request
as `request.tenant_context`; pages and the read API call it. The base layer only needs to know
that what it returns can say whether a role is allowed and which tenant it is.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from core.roles import Role


class Tenancy(Protocol):
    @property
    def tenant(self) -> Any: ...

    def allows(self, needed: Role) -> bool: ...


def tenancy_of(request: HttpRequest) -> Tenancy:
    """The signed-in person's tenant and role (404 for someone in no tenant)."""
    resolve = getattr(request, "tenant_context", None)
    if resolve is None:
        raise ImproperlyConfigured("tenants.middleware.TenantMiddleware is not installed")
    tenancy: Tenancy = resolve()
    return tenancy
