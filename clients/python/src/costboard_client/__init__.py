"""Send LLM usage to Costboard: one line per call, batched and retried in the background.

    import costboard_client

    costboard_client.init(api_key="cb_...", base_url="https://costboard.example.com")
    response = openai_client.chat.completions.create(...)
    costboard_client.record_openai(response, feature="smart-reply", user_id="u-42")

Nothing here raises into the application or waits on the network; see `CostboardClient`.
"""

from __future__ import annotations

import threading
from typing import Any

from costboard_client.client import CostboardClient
from costboard_client.providers import Usage, anthropic_usage, openai_usage

__all__ = [
    "CostboardClient",
    "Usage",
    "anthropic_usage",
    "flush",
    "get_client",
    "init",
    "openai_usage",
    "record",
    "record_anthropic",
    "record_openai",
    "stats",
]
__version__ = "0.1.0"

_default: CostboardClient | None = None
_default_lock = threading.Lock()


def init(
    api_key: str | None = None, base_url: str | None = None, **options: Any
) -> CostboardClient:
    """Configure the process-wide client (options: see `CostboardClient`); returns it."""
    global _default
    with _default_lock:
        previous, _default = _default, CostboardClient(api_key, base_url, **options)
    if previous is not None:
        previous.close(timeout=1.0)
    return _default


def get_client() -> CostboardClient:
    """The process-wide client; made from COSTBOARD_API_KEY and COSTBOARD_URL if not `init`."""
    global _default
    with _default_lock:
        if _default is None:
            _default = CostboardClient()
        return _default


def record(
    provider: str, model: str, input_tokens: int, output_tokens: int = 0, **fields: Any
) -> str | None:
    """`CostboardClient.record` on the process-wide client."""
    return get_client().record(provider, model, input_tokens, output_tokens, **fields)


def record_openai(response: Any, **fields: Any) -> str | None:
    """`CostboardClient.record_openai` on the process-wide client."""
    return get_client().record_openai(response, **fields)


def record_anthropic(message: Any, **fields: Any) -> str | None:
    """`CostboardClient.record_anthropic` on the process-wide client."""
    return get_client().record_anthropic(message, **fields)


def flush(timeout: float = 5.0) -> bool:
    return get_client().flush(timeout)


def stats() -> dict[str, int]:
    return get_client().stats()
