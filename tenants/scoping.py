"""Tenant scoping by construction.

Every tenant-owned model uses `TenantScopedManager` as its default manager. Its plain
queryset raises `TenantScopeError`, so a query that forgot its tenant fails closed instead of
leaking another organisation's rows. The only ways in are `for_tenant(tenant)` and the loudly
named `unscoped_all_tenants` escape hatch, meant for operator-wide jobs (retention, metrics).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.db import models

if TYPE_CHECKING:
    from tenants.models import Tenant

M = TypeVar("M", bound=models.Model)


class TenantScopeError(RuntimeError):
    """A tenant-owned table was queried without a tenant."""


class TenantScopedManager(models.Manager[M], Generic[M]):
    def get_queryset(self) -> models.QuerySet[M]:
        if getattr(self, "instance", None) is not None and hasattr(self, "core_filters"):
            # A related manager (budget.channels, team's keys): it is already narrowed to rows
            # of one owner row, which was itself read through a tenant scope.
            return super().get_queryset()
        raise TenantScopeError(
            f"{self.model.__name__} is tenant-owned: use .for_tenant(tenant) "
            "(or .unscoped_all_tenants for operator-wide work)."
        )

    def for_tenant(self, tenant: Tenant | int) -> models.QuerySet[M]:
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        if tenant_id is None:
            raise TenantScopeError("for_tenant() needs a saved tenant")
        return super().get_queryset().filter(tenant_id=tenant_id)

    def create(self, **kwargs: Any) -> M:
        if kwargs.get("tenant") is None and kwargs.get("tenant_id") is None:
            raise TenantScopeError(f"{self.model.__name__} needs a tenant")
        return super().get_queryset().create(**kwargs)


class TenantOwned(models.Model):
    """Base for every tenant-owned row: a non-null tenant and a fail-closed default manager."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")

    objects: TenantScopedManager[Any] = TenantScopedManager()
    # Operator-wide escape hatch; every use must say in a comment why no tenant applies.
    unscoped_all_tenants: models.Manager[Any] = models.Manager()

    class Meta:
        abstract = True
