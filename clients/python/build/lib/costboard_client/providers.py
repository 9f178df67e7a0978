"""Read token usage from OpenAI and Anthropic response objects, without importing their SDKs.

The objects are read by attribute (the SDKs' pydantic models) or by key (a dict, e.g. a raw
JSON response or `model_dump()`), so any SDK version with the documented fields works.
Costboard's `input_tokens` counts every input token, cached ones included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Usage:
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def as_fields(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }


def openai_usage(response: Any) -> Usage | None:
    """Chat Completions (`prompt_tokens`, `completion_tokens`, cache in
    `prompt_tokens_details`), the Responses API (`input_tokens`, `output_tokens`, cache in
    `input_tokens_details`) and embeddings (`prompt_tokens` only). None without usage."""
    usage = _get(response, "usage")
    if usage is None:
        return None  # e.g. a stream chunk before the last, or a stream without include_usage
    if _get(usage, "input_tokens") is not None:  # Responses API
        prompt, completion = _get(usage, "input_tokens"), _get(usage, "output_tokens")
        details = _get(usage, "input_tokens_details")
    else:  # Chat Completions, embeddings
        prompt, completion = _get(usage, "prompt_tokens"), _get(usage, "completion_tokens")
        details = _get(usage, "prompt_tokens_details")
    cache_read = _int(_get(details, "cached_tokens"))
    cache_write = _int(_get(details, "cache_write_tokens"))
    # OpenAI's prompt/input tokens already include the cached ones, as Costboard's do (max()
    # only guards that invariant). Output tokens include reasoning tokens, billed as output.
    return Usage(
        provider="openai",
        model=str(_get(response, "model") or ""),
        input_tokens=max(_int(prompt), cache_read + cache_write),
        output_tokens=_int(completion),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def anthropic_usage(message: Any) -> Usage | None:
    """An Anthropic Messages API message. Its `usage.input_tokens` excludes the cache, so
    Costboard's input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens."""
    usage = _get(message, "usage")
    if usage is None:
        return None
    uncached = _int(_get(usage, "input_tokens"))
    cache_read = _int(_get(usage, "cache_read_input_tokens"))
    cache_write = _int(_get(usage, "cache_creation_input_tokens"))
    return Usage(
        provider="anthropic",
        model=str(_get(message, "model") or ""),
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=_int(_get(usage, "output_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> int:
    # Optional counts come back as None (e.g. no cache activity): that is zero tokens.
    return 0 if value is None else int(value)
