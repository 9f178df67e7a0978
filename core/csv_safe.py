"""Spreadsheet-safe CSV, shared by every download (invoices, FOCUS, the audit log).

- UTF-8 (no byte-order mark), RFC 4180 quoting, CRLF line ends, streamed in ~64 KiB chunks.
- Text that begins with = + - @ tab or carriage return gets a leading apostrophe, so no
  spreadsheet runs it as a formula. Numbers are written as plain numbers, so a negative
  amount stays -1.23 and is never neutralised.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal

from core.money import decimal_text

DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK_BYTES = 64 * 1024
Cell = str | int | Decimal | None


def neutralise(text: str) -> str:
    """Text a spreadsheet would read as a formula gets a leading apostrophe."""
    return "'" + text if text.startswith(DANGEROUS_START) else text


def cell(value: Cell) -> str:
    """Numbers as plain numbers; every text cell through `neutralise`."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, int):
        return str(value)
    return neutralise(value)


def stream(header: Iterable[str], rows: Iterable[list[Cell]]) -> Iterator[bytes]:
    """Encode rows as CSV, yielding ~64 KiB chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")
