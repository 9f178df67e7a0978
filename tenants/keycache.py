"""A short per-process cache of authenticated API keys.

Every ingest and gateway request authenticates; caching the key for a few seconds saves the
database round trip. Revoking a key or changing a price clears this process's cache at once;
other web processes notice within `API_KEY_CACHE_SECONDS` (default 5 s).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from tenants.models import ApiKey

_keys: dict[str, tuple[float, ApiKey]] = {}
MAX_ENTRIES = 10_000


def get(digest: str) -> ApiKey | None:
    hit = _keys.get(digest)
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1]


def put(digest: str, key: ApiKey) -> None:
    if len(_keys) >= MAX_ENTRIES:
        _keys.clear()
    _keys[digest] = (time.monotonic() + settings.API_KEY_CACHE_SECONDS, key)


def clear() -> None:
    _keys.clear()
