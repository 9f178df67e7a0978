"""What the demo tenant's usage looks like, declared once: teams, models, features and their
routes, traffic patterns, the status mix, tags and the incidents the pages should show.

The story: six teams use five catalog models and one self-hosted model that the catalog
cannot price, over 90 days of growing traffic that follows office hours and is quiet at
weekends. Support launched `smart-reply` on a Friday without a max_tokens cap, and a retry
loop on long drafts burned output tokens all weekend until a fix shipped on Monday morning.
Two days ago a provider outage caused a retry storm: one hour of bursts of 429s and 5xx, and
clients retrying them. Prompts moved from v1 to v2 and then v3 in gradual rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

TEAMS = (
    ("search", "Search", "CC-1001"),
    ("support", "Customer Support", "CC-1002"),
    ("growth", "Growth", "CC-1003"),
    ("platform", "Platform", "CC-1004"),
    ("data-science", "Data Science", "CC-1005"),
    ("mobile", "Mobile", "CC-1006"),
)
# Enough history that a 30-day page's "vs previous period" and month-over-month have a
# whole previous period to compare with.
DAYS = 90
UNPRICED_MODEL = ("acme-internal", "acme-llm-7b")

# Relative traffic by UTC hour (office hours peak, lunch dip) and by weekday (Mon..Sun).
HOUR_OF_DAY = (
    0.12, 0.10, 0.08, 0.08, 0.10, 0.15, 0.25, 0.45, 0.75, 0.95, 1.00, 0.95,
    0.80, 0.90, 1.00, 1.00, 0.90, 0.75, 0.55, 0.40, 0.32, 0.25, 0.20, 0.15,
)  # fmt: skip
DAY_OF_WEEK = (1.00, 1.05, 1.05, 1.00, 0.90, 0.35, 0.30)
# Adoption grows over the history: traffic at the end is GROWTH_END / GROWTH_START times the
# start's (about +25% month over month).
GROWTH_START, GROWTH_END = 0.55, 1.1
# The runaway loop ignores office hours: a flat rate per hour on the scale of HOUR_OF_DAY.
INCIDENT_RATE = 0.30
INCIDENT_LENGTH = timedelta(days=3, hours=1)  # Friday 10:00 to the Monday 11:00 fix
INCIDENT_OUTPUT_MEDIAN = 2_500
USERS = 300
# Two things the anomaly detector should find in the demo, both still going on at seed time:
# chat-assistant traffic at 4x for the last three hours, and summarization falling back to
# gpt-4o (a model it never used, and several times dearer) for the last six hours.
SPIKE_FEATURE, SPIKE_FACTOR, SPIKE_HOURS = "chat-assistant", 4.0, 3
DRIFT_FEATURE, DRIFT_MODEL, DRIFT_HOURS, DRIFT_SHARE = "summarization", "gpt-4o", 6, 0.35

# Status codes of normal calls: mostly 2xx, a few client errors and rate limits, rare 5xx.
STATUS_MIX = (
    (200, 0.9665), (400, 0.008), (401, 0.002), (404, 0.002), (422, 0.004),
    (429, 0.012), (500, 0.002), (502, 0.001), (503, 0.002), (504, 0.0005),
)  # fmt: skip
# The runaway smart-reply loop also ran into the provider's rate limits.
INCIDENT_429_SHARE = 0.06
# The retry storm: STORM_DAYS_AGO days before today at STORM_HOUR UTC, one hour in which
# clients retried every failure, so traffic was STORM_FACTOR times normal.
STORM_DAYS_AGO, STORM_HOUR, STORM_FACTOR = 2, 14, 3.0
STORM_MIX = ((200, 0.45), (429, 0.35), (500, 0.04), (502, 0.07), (503, 0.07), (504, 0.02))

# Tags every event carries, which the demo tenant rolls up by (its tag dimensions).
TIER_KEY, PROMPT_KEY = "customer_tier", "prompt_version"
TAG_DIMENSIONS = (TIER_KEY, PROMPT_KEY)
CUSTOMER_TIERS = (("free", 0.62), ("pro", 0.28), ("enterprise", 0.10))
# Each version rolls out from `start` days into the history over `ramp` days, taking over
# from the one before; the first is there from the start.
PROMPT_ROLLOUTS = (("v1", 0, 1), ("v2", 30, 10), ("v3", 68, 6))


@dataclass(frozen=True)
class Model:
    provider: str
    name: str
    first_token_ms: float
    ms_per_output_token: float
    caches: bool = True


MODELS = {
    m.name: m
    for m in (
        Model("openai", "gpt-4o", 450, 14),
        Model("openai", "gpt-4o-mini", 300, 7),
        Model("anthropic", "claude-sonnet-4-0", 650, 18),
        Model("anthropic", "claude-3-5-haiku-latest", 380, 8),
        Model("google", "gemini-2.0-flash", 280, 5),
        Model(*UNPRICED_MODEL, 120, 11, caches=False),
    )
}


@dataclass(frozen=True)
class Feature:
    name: str
    endpoints: tuple[tuple[str, float], ...]  # the feature's routes and their shares
    share: float  # share of normal traffic
    teams: tuple[tuple[str | None, float], ...]  # None: called through the team-less key
    models: tuple[tuple[str, float], ...]
    input_median: int
    output_median: int
    cache_rate: float  # share of calls that reuse a cached prompt prefix
    end_users: bool  # called on behalf of an end user (user_id set)


SMART_REPLY = "smart-reply"
FEATURES = (
    Feature(SMART_REPLY, (("/v1/replies/suggest", 0.8), ("/v1/replies/rewrite", 0.2)), 0.12,
            (("support", 1),), (("claude-sonnet-4-0", 0.8), ("gpt-4o-mini", 0.2)),
            1_200, 140, 0.5, True),
    Feature("summarization", (("/v1/summarize", 0.75), ("/v1/summarize/batch", 0.25)), 0.18,
            (("support", 0.6), ("growth", 0.4)),
            (("claude-3-5-haiku-latest", 0.6), ("gpt-4o-mini", 0.4)), 4_500, 280, 0.2, True),
    Feature("code-review", (("/v1/review/diff", 0.7), ("/v1/review/file", 0.3)), 0.10,
            (("platform", 1),), (("claude-sonnet-4-0", 0.75), ("gpt-4o", 0.25)),
            9_000, 900, 0.7, False),
    Feature("chat-assistant", (("/v1/chat", 0.6), ("/v1/chat/stream", 0.4)), 0.26,
            (("mobile", 0.6), ("growth", 0.4)), (("gpt-4o", 0.45), ("gpt-4o-mini", 0.55)),
            1_800, 350, 0.6, True),
    Feature("rag-search", (("/v1/search/answer", 0.85), ("/v1/search/rerank", 0.15)), 0.20,
            (("search", 0.9), (None, 0.1)), (("gemini-2.0-flash", 0.7), ("gpt-4o-mini", 0.3)),
            3_500, 220, 0.3, True),
    Feature("classification", (("/v1/classify", 0.5), ("/v1/classify/batch", 0.5)), 0.14,
            (("data-science", 0.6), (None, 0.4)),
            ((UNPRICED_MODEL[1], 0.5), ("gemini-2.0-flash", 0.3), ("gpt-4o-mini", 0.2)),
            450, 12, 0.0, False),
)  # fmt: skip
FEATURE_NAMES = [f.name for f in FEATURES]
SMART_REPLY_INDEX = FEATURE_NAMES.index(SMART_REPLY)
SPIKE_INDEX = FEATURE_NAMES.index(SPIKE_FEATURE)
