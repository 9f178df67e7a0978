"""The base of every page: signed in, in a tenant, with the role the page needs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from core.roles import Role
from core.tenancy import tenancy_of

View = Callable[..., HttpResponse]
# One form action of a page: None when done (the page redirects to itself), or context to
# render the page with instead (a form with its errors, a secret shown once).
Action = Callable[[HttpRequest, Any], dict[str, Any] | None]


def member_view(role: Role = Role.VIEWER) -> Callable[[View], View]:
    """Wrap a page: 302 to login when signed out, 404 outside any tenant, 403 below `role`.

    The view receives the tenant context and must read through it, so every query it makes
    is scoped to the tenant the person is in.
    """

    def decorate(view: View) -> View:
        @login_required
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            ctx = tenancy_of(request)
            if not ctx.allows(role):
                raise PermissionDenied(f"this page needs the {role.label} role")
            return view(request, ctx, *args, **kwargs)

        return wrapped

    return decorate


def posted_action(
    request: HttpRequest, ctx: Any, actions: dict[str, Action], page: str
) -> HttpResponse | dict[str, Any]:
    """Run the action a page's form names in `action`: a redirect back to `page` (so a reload
    does not post again), or the context the action wants the page rendered with."""
    action = actions.get(request.POST.get("action", ""))
    if action is None:
        messages.error(request, "Unknown action.")
        return redirect(page)
    return action(request, ctx) or redirect(page)
