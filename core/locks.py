"""Transaction-scoped PostgreSQL advisory locks: the one way Costboard serialises writers.

Only *xact* locks are used: they end with the transaction, so they are safe behind PgBouncer
in transaction pooling mode (a session lock would stay on a pooled server connection). A key
is either one bigint or a (space, key) pair of ints; the two forms never meet in pg_locks.
"""

from __future__ import annotations

from django.db import connection

INT4 = 2**31


def xact_lock(key: int) -> None:
    """Wait for the lock of one bigint key, until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def xact_lock_pair(space: int, key: int) -> None:
    """Wait for the lock of (space, key), until the transaction ends; key is folded to int4."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [space, key % INT4])


def try_xact_lock_pair(space: int, key: int) -> bool:
    """Take the lock of (space, key) until the transaction ends; False if another holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [space, key % INT4])
        row = cursor.fetchone()
    return bool(row and row[0])
