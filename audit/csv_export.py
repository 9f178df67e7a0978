"""The audit log as CSV, through the same spreadsheet-safe writer as the invoices."""

from __future__ import annotations

import json
from collections.abc import Iterator

from audit.models import AuditEntryQuerySet
from core.csv_safe import Cell, stream

COLUMNS = ("at_utc", "actor", "action", "target", "details")


def audit_csv(rows: AuditEntryQuerySet) -> Iterator[bytes]:
    return stream(COLUMNS, _rows(rows))


def _rows(rows: AuditEntryQuerySet) -> Iterator[list[Cell]]:
    fields = ("at", "actor_label", "action", "target", "details")
    for at, actor, action, target, details in rows.values_list(*fields).iterator(2000):
        yield [at.isoformat(), actor, action, target, json.dumps(details, sort_keys=True)]
