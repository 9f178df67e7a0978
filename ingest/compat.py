"""Map the `LLMCostTracker` telemetry payload (seeds/001) onto a Costboard event."""

from __future__ import annotations

from typing import Any


def _section(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def tracker_payload_to_event(payload: Any) -> Any:
    """trace_id -> event_id; tokens.cache_tokens -> cache reads; costs.total_usd -> client cost.

    Anything that is not the tracker's shape is passed through, so validation names the field.
    """
    if not isinstance(payload, dict):
        return payload
    tokens, costs = _section(payload, "tokens"), _section(payload, "costs")
    metadata = _section(payload, "metadata")
    cache_tokens = tokens.get("cache_tokens") or 0
    event: dict[str, Any] = {
        "event_id": payload.get("trace_id"),
        "timestamp": payload.get("timestamp"),
        "provider": payload.get("provider"),
        "model": payload.get("model"),
        "feature": payload.get("feature"),
        "user_id": payload.get("user_id"),
        "input_tokens": tokens.get("input"),
        "output_tokens": tokens.get("output"),
        # The tracker only reports cached tokens when it saw a cache hit.
        "cache_read_tokens": cache_tokens if tokens.get("cache_hit") else 0,
        "cost_usd": costs.get("total_usd"),
        "environment": metadata.get("environment") or "production",
    }
    if metadata.get("version"):
        event["tags"] = {"version": str(metadata["version"])}
    return event
