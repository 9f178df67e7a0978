"""Puts the tenant resolver on each request, for pages and the read API (`core.tenancy`)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tenants.context import TenantContext, tenant_context


class TenantMiddleware:
    """`request.tenant_context()`: the signed-in person's tenant and role, resolved on first
    call (most requests, such as ingest, never ask) and then reused for the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        resolved: list[TenantContext] = []

        def resolve() -> TenantContext:
            if not resolved:
                resolved.append(tenant_context(request))
            return resolved[0]

        request.tenant_context = resolve  # type: ignore[attr-defined]
        return self.get_response(request)
