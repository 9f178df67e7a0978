"""Group commit: concurrent writes of one web process share one database statement.

A single-event POST costs PostgreSQL about as much for its statement and commit as for its
row; under load most of that is repeated work. Here the request threads of a process that
write for the same key (a tenant) at the same time take turns as leader: the first one
writes alone; those arriving meanwhile queue; when the write is done the first of the queue
is promoted and writes the whole queue at once, and so on. Groups form by themselves from
whatever arrived during the previous write: no timer, no added latency when idle.

Each request still waits until its own rows are committed (and gets its own result), so a
success answer keeps meaning "stored". A failed write fails every request of its group with
the same exception. Waiting is bounded: a request that is still queued after `wait_seconds`
withdraws and fails as a storage outage (503: nothing of it was written). One whose group is
already being written waits once more, then fails the same way, although that write may
still commit later; like a client's own timeout, its retry is then a counted duplicate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from django.db import OperationalError

K = TypeVar("K", bound=Hashable)
P = TypeVar("P")
R = TypeVar("R")


@dataclass(eq=False)  # compared by identity: a queue holds each entry once
class _Entry(Generic[P, R]):
    payload: P
    done: threading.Event = field(default_factory=threading.Event)
    group: list[_Entry[P, R]] | None = None  # set when this entry is promoted to write it
    result: R | None = None
    error: BaseException | None = None


class GroupCommit(Generic[K, P, R]):
    """`run(key, payload)` returns `write(key, payloads)`'s result for that payload (raises it
    if it is an exception), where `payloads` is every payload queued for the same key while
    the previous write ran."""

    def __init__(
        self, write: Callable[[K, list[P]], Sequence[R | Exception]], wait_seconds: float = 30.0
    ) -> None:
        self._write = write
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._writing: set[K] = set()  # keys with a write in flight in this process
        self._queued: dict[K, list[_Entry[P, R]]] = {}

    def run(self, key: K, payload: P) -> R:
        entry: _Entry[P, R] = _Entry(payload)
        with self._lock:
            lead = key not in self._writing
            if lead:
                self._writing.add(key)
            else:
                self._queued.setdefault(key, []).append(entry)
        group = [entry] if lead else self._follow(key, entry)
        if group is not None:
            self._lead(key, group)
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value] # set by the write that included it

    def _follow(self, key: K, entry: _Entry[P, R]) -> list[_Entry[P, R]] | None:
        """Wait until another thread wrote this entry (None) or promoted it to lead (a group)."""
        if entry.done.wait(self.wait_seconds):
            return entry.group
        with self._lock:
            queue = self._queued.get(key, [])
            if entry in queue:  # not taken by any write: withdraw, nothing of it is stored
                queue.remove(entry)
                raise OperationalError("timed out waiting for the database (group commit)")
        # Taken by a write in flight (or promoted just now): its outcome comes soon or never.
        if entry.done.wait(self.wait_seconds):
            return entry.group
        raise OperationalError("timed out waiting for the database (group commit)")

    def _lead(self, key: K, group: list[_Entry[P, R]]) -> None:
        """Write the group, hand every member its result, then promote the next leader."""
        try:
            results = self._write(key, [e.payload for e in group])
            for e, result in zip(group, results, strict=True):
                if isinstance(result, Exception):
                    e.error = result  # this member's own failure
                else:
                    e.result = result
        except BaseException as exc:  # every member answers for itself (503, 500, ...)
            for e in group:
                e.error = exc
        finally:
            for e in group[1:]:
                e.done.set()
            self._promote(key)

    def _promote(self, key: K) -> None:
        with self._lock:
            queue = self._queued.pop(key, None)
            if not queue:
                self._writing.discard(key)
                return
            queue[0].group = queue
        queue[0].done.set()  # that thread writes the queue; this key stays in `_writing`
