"""Celery beat that sends on one node at a time, however many are started.

Each beat process tries to hold one key in the shared cache (Redis in production). The holder
sends the schedule and renews the key on every tick (at most every `STANDBY_SECONDS`); the
others stand by, sending nothing, and retry every `STANDBY_SECONDS`. If the holder dies, its key
expires after BEAT_LOCK_SECONDS and a standby takes over; a holder stopped cleanly hands over
at once. The beat tasks are idempotent as well (advisory locks, unique constraints), so the
moment of a takeover, when both may send, does no harm."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from celery.beat import PersistentScheduler
from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)
LOCK_KEY = "costboard:beat:leader"
STANDBY_SECONDS = 2.0


def beat_ident() -> str:
    """Who holds the lock: host and pid, as Celery names a message's origin."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SingleBeatScheduler(PersistentScheduler):
    """PersistentScheduler (the default) that sends only while it holds the beat lock."""

    leading: bool | None = None  # not yet known: the first tick logs which it is

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold_lock():
            return STANDBY_SECONDS
        return min(super().tick(*args, **kwargs), STANDBY_SECONDS)

    def close(self) -> None:
        if self.leading and cache.get(LOCK_KEY) == beat_ident():
            cache.delete(LOCK_KEY)  # a clean stop hands over at once
        super().close()

    def _hold_lock(self) -> bool:
        seconds = settings.BEAT_LOCK_SECONDS
        me = beat_ident()
        # add() is atomic (SET NX on Redis): of several standbys, one takes an expired lock.
        holds = cache.add(LOCK_KEY, me, timeout=seconds) or cache.get(LOCK_KEY) == me
        if holds:
            cache.touch(LOCK_KEY, seconds)
        if holds != self.leading:
            log.warning("beat %s: %s", me, "sending the schedule" if holds else "standing by")
            self.leading = holds
        return holds
