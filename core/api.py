"""The base of every read endpoint: a read-scope API key or a signed-in member, one tenant.

Which authentication and throttling apply is DRF's default (settings: the API-key
authentication and the per-key rate limit, then the session), so this layer names no app.
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from core.tenancy import tenancy_of

READ_SCOPE = "read"


class ReadAccess(permissions.BasePermission):
    """A key with scope read, or a signed-in person (any role) in the session's tenant."""

    message = "this endpoint needs an API key with scope 'read' or a signed-in member"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.auth is not None:  # an API key: DRF's session auth sets no `auth`
            return getattr(request.auth, "scope", None) == READ_SCOPE
        return bool(request.user and request.user.is_authenticated)


class ApiView(APIView):
    """An API endpoint that answers 405 (with `Allow`) to a method it does not serve before it
    looks at who asks: DRF authenticates first, so a read key's TRACE /v1/traces was a 403 and
    an anonymous one a 401, which says nothing about the method."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):
            self.http_method_not_allowed(request, *args, **kwargs)  # raises MethodNotAllowed
        super().initial(request, *args, **kwargs)


class ReadView(ApiView):
    permission_classes = [ReadAccess]

    def tenant(self, request: Request) -> Any:
        """The key's tenant, or the signed-in person's (the session's choice)."""
        if request.auth is not None:
            return getattr(request.auth, "tenant")  # noqa: B009 - an API key, typed by DRF as a Token
        return tenancy_of(request._request).tenant
