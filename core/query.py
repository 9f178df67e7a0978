"""Text parameters of the query string: what a page or API filters by, as the database takes it."""

from __future__ import annotations

from typing import Any

MAX_TEXT = 128


def text_param(params: Any, name: str, limit: int = MAX_TEXT) -> str:
    """The parameter, at most `limit` characters, without NUL characters: PostgreSQL refuses
    them in a query (a 500), and no stored name can contain one, so they can match nothing."""
    return str(params.get(name) or "")[:limit].replace("\x00", "")
