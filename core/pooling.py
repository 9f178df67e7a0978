"""What a transaction-pooling PgBouncer in front of PostgreSQL allows (settings.DATABASE_POOLED).

PgBouncer 1.18 (Debian 12's) hands each transaction whichever server connection is free, so a
statement prepared by name on one is unknown on the next, or already known under the same
name from another client: PostgreSQL answers 'prepared statement "_pg3_0" does not exist'."""

from __future__ import annotations

from django.conf import settings


def prepare() -> bool | None:
    """psycopg's `prepare=` for hot statements: True (prepare at once, by name) on a direct
    connection, None (psycopg's default, which `prepare_threshold=None` turns off) when
    pooled, where the statement goes as an unnamed one that lives for its own round trip."""
    return None if settings.DATABASE_POOLED else True
