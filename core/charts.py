"""The look shared by every Plotly chart, and the escaping every label needs.

Names come from clients, so every label is HTML-escaped before Plotly sees it: Plotly reads a
little HTML in text, and an escaped label is shown literally instead of being interpreted.
"""

from __future__ import annotations

import html
from typing import Any

FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12}
PALETTE = [
    "#2f5bd3",
    "#e8833a",
    "#3aa17e",
    "#c2417a",
    "#8a63d2",
    "#d4b03a",
    "#3a9fc2",
    "#a0522d",
    "#9aa3b2",
]


def text(value: Any) -> str:
    return html.escape(str(value), quote=True)
