"""Token sums: whole numbers stored as `numeric(38, 0)`, read and written as Python `int`.

A raw event's token counts fit in `bigint` (ingest refuses more than 10**8 per count), but
their sums do not have to: ten years at bench/ingest.py's ingest rate is about 2e13 events,
and 2e13 calls of 10**8 tokens is 2e21 tokens, above bigint's 9.2e18. A rollup row, a
consumer window (up to a month of one tenant's calls) or an invoice line summing that many
would make every later merge of its tenant fail. `numeric(38, 0)` holds 1e38.

The field stays an integer field to Django (int in Python, int lookups and conversions); only
its column type differs. PostgreSQL's SUM of numeric is numeric, as SUM of bigint already is,
so raw-SQL readers see the same `Decimal` sums as before.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

SUM_COLUMN_TYPE = "numeric(38, 0)"


class TokenSumField(models.BigIntegerField):  # type: ignore[type-arg]
    """A sum of token counts: `int` in Python, `numeric(38, 0)` in the database."""

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return SUM_COLUMN_TYPE

    def cast_db_type(self, connection: BaseDatabaseWrapper) -> str:
        return SUM_COLUMN_TYPE

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        # psycopg reads numeric as Decimal; a sum of tokens is a whole number.
        return None if value is None else int(value)

    @property
    def validators(self) -> list[Any]:
        # Not bigint's range checks: the column holds up to 10**38 - 1, and sums are computed,
        # never typed into a form.
        return []
