"""Which tenant a signed-in person is looking at, and with which role."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404, HttpRequest

from core.roles import ROLE_RANK, Role
from tenants.models import Membership, Tenant
from tenants.selectors import memberships_of

SESSION_KEY = "costboard_tenant_id"


@dataclass(frozen=True)
class TenantContext:
    tenant: Tenant
    role: Role
    memberships: tuple[Membership, ...]

    def allows(self, needed: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]


def tenant_context(request: HttpRequest) -> TenantContext:
    """The session's tenant (or the person's first); 404 for someone in no tenant."""
    memberships = tuple(memberships_of(request.user))
    if not memberships:
        raise Http404("no tenant")
    wanted = request.session.get(SESSION_KEY)
    chosen = next((m for m in memberships if m.tenant_id == wanted), memberships[0])
    return TenantContext(tenant=chosen.tenant, role=Role(chosen.role), memberships=memberships)


def switch_tenant(request: HttpRequest, slug: str) -> Tenant:
    for membership in memberships_of(request.user):
        if membership.tenant.slug == slug:
            request.session[SESSION_KEY] = membership.tenant_id
            return membership.tenant
    raise Http404("no such tenant")
