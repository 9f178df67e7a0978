"""API key authentication, scope permissions and the per-key rate limit for DRF views."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from tenants.models import ApiKey, Scope
from tenants.selectors import api_key_from_token
from tenants.services import touch_api_key


@dataclass
class KeyPrincipal:
    """`request.user` for a request made with an API key."""

    key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def pk(self) -> str:
        return f"key:{self.key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer cb_<prefix>_<secret>`; unknown or revoked keys get 401."""

    def authenticate(self, request: Request) -> tuple[KeyPrincipal, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        key = api_key_from_token(token.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("unknown or revoked API key")
        touch_api_key(key)
        return KeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="costboard"'


def _scope_permission(scope: Scope) -> type[permissions.BasePermission]:
    class HasScope(permissions.BasePermission):
        message = f"this endpoint needs an API key with scope {scope.value!r}"

        def has_permission(self, request: Request, view: Any) -> bool:
            return isinstance(request.auth, ApiKey) and request.auth.scope == scope

    HasScope.__name__ = f"Has{scope.value.title()}Scope"
    return HasScope


HasIngestScope = _scope_permission(Scope.INGEST)
HasReadScope = _scope_permission(Scope.READ)


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """A fixed one-minute window per key, counted in the shared cache (Redis in production)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        limit = key.rate_limit_per_minute or settings.INGEST_RATE_LIMIT_PER_MINUTE
        window = int(time.time() // 60)
        self.window_end = (window + 1) * 60
        try:
            return _count(f"costboard:rate:{key.prefix}:{window}") <= limit
        except Exception:  # a cache outage must not stop ingest: fail open on the limit only
            return True

    def wait(self) -> float:
        return max(1.0, self.window_end - time.time())


def _count(counter: str) -> int:
    """Increment the window's counter; one round trip to Redis (INCR + EXPIRE NX)."""
    client: Any = getattr(cache, "_cache", None)  # RedisCache's private, untyped client
    if hasattr(client, "get_client"):
        redis = client.get_client(counter, write=True)
        name = cache.make_and_validate_key(counter)
        pipe = redis.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, 120, nx=True)
        return int(pipe.execute()[0])
    cache.add(counter, 0, timeout=120)
    return cache.incr(counter)
