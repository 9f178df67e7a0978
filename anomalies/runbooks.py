"""What to do about each kind of anomaly: the seed's runbooks (model drift: its "audit routing")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Runbook:
    symptoms: str
    actions: tuple[str, ...]
    escalation: str


RUNBOOKS = {
    "volume_spike": Runbook(
        "Token usage 2x above baseline for the feature.",
        (
            "Check feature dashboard for recent deployments",
            "Review error logs for retry storms",
            "Verify cache hit rates haven't dropped",
            "Check for bot traffic or unusual user patterns",
        ),
        "If volume continues to grow, consider rate limiting or feature flag deactivation.",
    ),
    "cost_per_request": Runbook(
        "Average cost per call increased (e.g. from $0.0125 to $0.0250).",
        (
            "Compare current prompt version with previous",
            "Check if context window size increased",
            "Verify model hasn't changed (e.g., accidental fallback to gpt-4o)",
            "Review recent code changes to prompt construction",
        ),
        "Roll back to previous version if cause isn't identified within 15 minutes.",
    ),
    "cache_hit_rate": Runbook(
        "Cache efficiency dropped (e.g. from 70% to 35%).",
        (
            "Check if cache TTL was modified",
            "Verify cache key generation logic",
            "Review if prompt patterns changed",
            "Check cache infrastructure health",
        ),
        "Disable caching optimization if hit rate stays below 50% for 1 hour.",
    ),
    "model_drift": Runbook(
        "Unexpected model usage (e.g. production falling back to expensive models).",
        (
            "Audit routing logic: which code path chose this model",
            "Check the usual model's errors and rate limits (429s often trigger fallbacks)",
            "Compare cost per request before and after the new model appeared",
            "Confirm with the feature's owners whether the change was intended",
        ),
        "Pin the intended model in the routing configuration until the cause is fixed.",
    ),
}
