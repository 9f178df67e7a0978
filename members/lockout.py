"""Login lockout on django-axes' cache handler: counts live in the cache (Redis in
production), so a login attempt adds no database write.

Two counters per attempt, each with its own limit: the username's (LOGIN_FAILURE_LIMIT, 5)
stops guessing one person's password, the client address's (LOGIN_ADDRESS_FAILURE_LIMIT)
stops one client trying a few passwords on many usernames. Either at its limit refuses every
login it covers for LOGIN_LOCKOUT_MINUTES after the last failure, even with the right password.
A success clears the username's count only: an attacker who owns one account must not be
able to reset the address's count by signing into it.
"""

from __future__ import annotations

import logging
from typing import Any

from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cache_timeout, get_client_username, make_cache_key_list
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit.models import Action
from audit.services import Actor
from members.services import record_for_username

Counter = tuple[str, int]
log = logging.getLogger(__name__)


def username_key(username: str) -> str:
    # The key axes itself uses for the "username" lockout parameter, so its
    # `axes_reset_username` command and `axes.utils.reset` clear it too.
    return make_cache_key_list([{"username": username}])[0]


def address_key(address: str) -> str:
    return make_cache_key_list([{"ip_address": address}])[0]


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or with LOGIN_TRUSTED_PROXIES = n proxies in front
    (each appending to X-Forwarded-For) the address the outermost of them saw; entries left of
    it are the client's own claims and never trusted."""
    proxies = settings.LOGIN_TRUSTED_PROXIES
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if proxies and len(forwarded) >= proxies and forwarded[-proxies]:
        return forwarded[-proxies]
    return str(request.META.get("REMOTE_ADDR", ""))


class LockoutHandler(AxesCacheHandler):
    """Axes' cache handler with a limit per username and another per client address."""

    def counters(self, request: Any, credentials: dict[str, Any] | None) -> list[Counter]:
        found: list[Counter] = []
        username = get_client_username(request, credentials)
        if username:
            found.append((username_key(username), settings.LOGIN_FAILURE_LIMIT))
        if request.axes_ip_address:
            found.append(
                (address_key(request.axes_ip_address), settings.LOGIN_ADDRESS_FAILURE_LIMIT)
            )
        return found

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        return max(
            (self.cache.get(key, 0) for key, _ in self.counters(request, credentials)), default=0
        )

    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        return any(
            self.cache.get(key, 0) >= limit for key, limit in self.counters(request, credentials)
        )

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        # Refused because already locked out: not counted, so the lockout ends on time.
        if request is None or request.axes_locked_out or self.is_whitelisted(request, credentials):
            return
        timeout = get_cache_timeout(request)
        locked = False
        for key, limit in self.counters(request, credentials):
            count = 1 if self.cache.add(key, 1, timeout) else self.cache.incr(key)
            self.cache.touch(key, timeout)
            locked = locked or count >= limit
        if locked:
            request.axes_locked_out = True
            request.axes_credentials = credentials
            username = get_client_username(request, credentials)
            log.warning("login locked out: username %r from %s", username, request.axes_ip_address)
            details = {"address": str(request.axes_ip_address or "")}
            record_for_username(username or "", None, Action.LOGIN_LOCKED_OUT, details)
            user_locked_out.send(
                "axes", request=request, username=username, ip_address=request.axes_ip_address
            )

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        self.cache.delete(username_key(user.get_username()))


def unlock(username: str, *, actor: Actor = None) -> bool:
    """Clear a username's failures (an admin's `manage.py unlock`); True if it had any.
    Logged in the username's tenants only when there was something to clear."""
    handler = LockoutHandler()
    cleared = bool(handler.cache.delete(username_key(username)))
    if cleared:
        record_for_username(username, actor, Action.LOGIN_UNLOCKED, {})
    return cleared


def lockout_response(
    request: HttpRequest, original: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """The sign-in page again, saying why and for how long (429)."""
    context = {
        "form": AuthenticationForm(request),
        "locked_out": True,
        "lockout_minutes": settings.LOGIN_LOCKOUT_MINUTES,
    }
    return render(request, "registration/login.html", context, status=429)
