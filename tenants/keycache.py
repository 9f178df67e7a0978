"""A per-process cache of authenticated API keys that every revocation empties within 0.5 s.

Every ingest and gateway request authenticates; caching the key saves the database round trip.
A revoked key must be refused by every web process within a second, so:

- revoking writes a new random *revocation stamp* into the shared cache (Redis in production)
  once the revocation is committed;
- each process reads the stamp at most every CHECK_SECONDS, and uses its cached keys only
  while its last successful read is younger than that; a changed stamp empties the cache.
  The cost is one cache read per process per CHECK_SECONDS, however many requests it serves;
- when the stamp cannot be read (Redis down), cached keys are not used: every request reads
  its key from the database, where the revocation is, until a read succeeds again. A process
  that went more than STALE_SECONDS without a successful read (idle, or cut off) empties its
  cache too, since a revocation made meanwhile may not have reached the stamp.

Entries also expire after API_KEY_CACHE_SECONDS, which bounds how long a price change (which
clears only its own process's cache) takes to reach the other processes.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache

if TYPE_CHECKING:
    from tenants.models import ApiKey

log = logging.getLogger(__name__)
STAMP_KEY = "costboard:api-keys:revocation-stamp"
CHECK_SECONDS = 0.5
STALE_SECONDS = 2.0
MAX_ENTRIES = 10_000


@dataclass
class _State:
    stamp: object = None  # the last stamp read (None: no revocation stamped yet)
    verified_at: float = float("-inf")  # when the last successful read of the stamp started
    failed_at: float = float("-inf")  # when the last failed read started
    generation: int = 0  # +1 on every clear: a key read before a clear is not cached after it


_keys: dict[str, tuple[float, ApiKey]] = {}
_state = _State()
_lock = threading.Lock()  # guards _state's updates
_checking = threading.Lock()  # one thread of a process reads the stamp at a time


def generation() -> int | None:
    """The cache generation while cached keys may be used, else None (read the database).

    Pass it to `put`: a key read from the database is cached only if no clear happened since.
    """
    now = time.monotonic()
    if now - _state.verified_at < CHECK_SECONDS or _check(now):
        return _state.generation
    return None


def get(digest: str, generation: int) -> ApiKey | None:
    hit = _keys.get(digest)
    if hit is None or hit[0] < time.monotonic() or generation != _state.generation:
        return None
    return hit[1]


def put(digest: str, key: ApiKey, generation: int) -> None:
    with _lock:
        if generation != _state.generation:
            return  # cleared since the key was read: it may have been revoked meanwhile
        if len(_keys) >= MAX_ENTRIES:
            _keys.clear()
        _keys[digest] = (time.monotonic() + settings.API_KEY_CACHE_SECONDS, key)


def clear() -> None:
    """Forget this process's cached keys (a price change, or a revocation made here)."""
    with _lock:
        _clear()


def _clear() -> None:
    _keys.clear()
    _state.generation += 1


def announce_revocation() -> bool:
    """Empty this process's cache and tell every other process (call once committed).

    False when the shared cache is unreachable: the other processes then read keys from the
    database until they reach it again (see the module docstring)."""
    clear()
    try:
        cache.set(STAMP_KEY, secrets.token_hex(16), timeout=None)
    except Exception:
        log.warning("revocation not announced: shared cache unreachable", exc_info=True)
        return False
    return True


def stamp_readable() -> bool:
    """Whether this process reaches the shared cache that carries the revocation stamp."""
    try:
        cache.get(STAMP_KEY)
    except Exception:
        return False
    return True


def _check(now: float) -> bool:
    """Read the revocation stamp (at most one thread, at most every CHECK_SECONDS after a
    failure): True when cached keys may be used now."""
    if now - _state.failed_at < CHECK_SECONDS or not _checking.acquire(blocking=False):
        return False  # Redis just failed, or another thread is reading: use the database
    try:
        try:
            stamp = cache.get(STAMP_KEY)
        except Exception:
            log.warning("API key cache off: revocation stamp unreadable", exc_info=True)
            with _lock:
                _state.failed_at = now
                _clear()
            return False
        with _lock:
            if stamp != _state.stamp or now - _state.verified_at > STALE_SECONDS:
                _clear()
                _state.stamp = stamp
            _state.verified_at = now
        return True
    finally:
        _checking.release()
