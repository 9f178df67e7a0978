"""Deterministic demo data for the `acme` tenant (what `make demo` shows).

The story the data tells: six teams use five catalog models and one self-hosted model that
the catalog cannot price. Traffic follows office hours and is quiet at weekends, except one:
support launched `smart-reply` on a Friday without a max_tokens cap, and a retry loop on
long drafts burned output tokens all weekend until a fix shipped on Monday morning.

Events go through `store_events`, so they are priced and rolled up exactly like ingested
ones; ids are `demo-<n>`, so storing the same data again is skipped as duplicates.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from anomalies.services import detect, last_complete_hour
from billing import months
from billing import services as billing
from demo.budgets import set_up_budgets
from ingest.models import PendingBatch, UsageEvent
from ingest.services import store_events
from ingest.validation import ValidEvent
from rollups.models import ROLLUP_MODELS, DailyRollup
from rollups.services import roll_up_all_pending
from tenants.models import ApiKey, Role, Scope, Team, Tenant
from tenants.scoping import TenantOwned
from tenants.services import add_member, create_api_key, create_team, create_tenant

TENANT_SLUG = "acme"
TENANT_NAME = "Acme Corp"
PASSWORD = "costboard-demo"  # noqa: S105 - the published demo login, printed by `make demo`
LOGINS = {"admin": Role.ADMIN, "finance": Role.FINANCE, "viewer": Role.VIEWER}
TEAMS = (
    ("search", "Search", "CC-1001"),
    ("support", "Customer Support", "CC-1002"),
    ("growth", "Growth", "CC-1003"),
    ("platform", "Platform", "CC-1004"),
    ("data-science", "Data Science", "CC-1005"),
    ("mobile", "Mobile", "CC-1006"),
)
DAYS = 35
DEFAULT_EVENTS = 200_000
CHUNK = 1_000  # events per store_events call: one ingest request's worth
UNPRICED_MODEL = ("acme-internal", "acme-llm-7b")

# Relative traffic by UTC hour (office hours peak, lunch dip) and by weekday (Mon..Sun).
HOUR_OF_DAY = (
    0.12, 0.10, 0.08, 0.08, 0.10, 0.15, 0.25, 0.45, 0.75, 0.95, 1.00, 0.95,
    0.80, 0.90, 1.00, 1.00, 0.90, 0.75, 0.55, 0.40, 0.32, 0.25, 0.20, 0.15,
)  # fmt: skip
DAY_OF_WEEK = (1.00, 1.05, 1.05, 1.00, 0.90, 0.35, 0.30)
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
    endpoint: str
    share: float  # share of normal traffic
    teams: tuple[tuple[str | None, float], ...]  # None: called through the team-less key
    models: tuple[tuple[str, float], ...]
    input_median: int
    output_median: int
    cache_rate: float  # share of calls that reuse a cached prompt prefix
    end_users: bool  # called on behalf of an end user (user_id set)


SMART_REPLY = "smart-reply"
FEATURES = (
    Feature(SMART_REPLY, "/api/replies/suggest", 0.12, (("support", 1),),
            (("claude-sonnet-4-0", 0.8), ("gpt-4o-mini", 0.2)), 1_200, 140, 0.5, True),
    Feature("summarization", "/api/tickets/summary", 0.18, (("support", 0.6), ("growth", 0.4)),
            (("claude-3-5-haiku-latest", 0.6), ("gpt-4o-mini", 0.4)), 4_500, 280, 0.2, True),
    Feature("code-review", "/ci/review", 0.10, (("platform", 1),),
            (("claude-sonnet-4-0", 0.75), ("gpt-4o", 0.25)), 9_000, 900, 0.7, False),
    Feature("chat-assistant", "/api/chat", 0.26, (("mobile", 0.6), ("growth", 0.4)),
            (("gpt-4o", 0.45), ("gpt-4o-mini", 0.55)), 1_800, 350, 0.6, True),
    Feature("rag-search", "/api/search/answer", 0.20, (("search", 0.9), (None, 0.1)),
            (("gemini-2.0-flash", 0.7), ("gpt-4o-mini", 0.3)), 3_500, 220, 0.3, True),
    Feature("classification", "/jobs/classify", 0.14, (("data-science", 0.6), (None, 0.4)),
            ((UNPRICED_MODEL[1], 0.5), ("gemini-2.0-flash", 0.3), ("gpt-4o-mini", 0.2)),
            450, 12, 0.0, False),
)  # fmt: skip
SMART_REPLY_INDEX = [f.name for f in FEATURES].index(SMART_REPLY)
SPIKE_INDEX = [f.name for f in FEATURES].index(SPIKE_FEATURE)


@dataclass
class DemoTenant:
    tenant: Tenant
    team_ids: dict[str, int]
    ingest_keys: dict[str | None, ApiKey]  # by team slug; None is the team-less key
    tokens: dict[str, str]  # plaintext keys worth printing once


@dataclass(frozen=True)
class Summary:
    events: int
    cost_usd: Decimal
    days: int
    unpriced_requests: int
    tokens: dict[str, str]


T = TypeVar("T")
Progress = Callable[[int, int], None]


def existing_events() -> int:
    """How many events the demo tenant already has (0 when it does not exist)."""
    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first()
    return 0 if tenant is None else UsageEvent.objects.for_tenant(tenant).count()


def reset() -> bool:
    """Delete the demo tenant and everything it owns; the users stay (they are global)."""
    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first()
    if tenant is None:
        return False
    with transaction.atomic():
        # Scoped deletes, no unscoped manager needed. The big tables go first as one DELETE
        # each (the tenant's cascade would collect every row), then the keys, because
        # ApiKey.team is PROTECT: with keys left, tenant.delete() raises ProtectedError.
        owned: tuple[type[TenantOwned], ...] = (UsageEvent, PendingBatch, *ROLLUP_MODELS)
        for model in owned:
            model.objects.for_tenant(tenant).delete()
        ApiKey.objects.for_tenant(tenant).delete()
        tenant.delete()  # cascades teams, memberships, price overrides, ...
    return True


def set_up_tenant() -> DemoTenant:
    """Tenant, logins, teams and keys; reuses a tenant that exists but has no events."""
    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first() or create_tenant(
        TENANT_SLUG, TENANT_NAME
    )
    for username, role in LOGINS.items():
        add_member(tenant, username, role, PASSWORD)
    teams = {t.slug: t for t in Team.objects.for_tenant(tenant)}
    for slug, name, cost_center in TEAMS:
        if slug not in teams:
            teams[slug] = create_team(tenant, slug, name, cost_center)
    keys: dict[str | None, ApiKey] = {}
    tokens: dict[str, str] = {}
    key_teams: list[str | None] = [*(t[0] for t in TEAMS), None]  # None: unallocated usage
    for key_team in key_teams:
        team = teams[key_team] if key_team else None
        name = f"demo {key_team or 'shared'} ingest"
        keys[key_team], token = create_api_key(tenant, team=team, name=name)
        if key_team == "search":
            tokens["ingest (team search)"] = token
    _, tokens["read"] = create_api_key(tenant, name="demo dashboards", scope=Scope.READ)
    return DemoTenant(tenant, {s: t.pk for s, t in teams.items()}, keys, tokens)


def launch_friday(now: datetime) -> datetime:
    """10:00 UTC on the Friday 7-13 days ago: the whole weekend after it is in the past."""
    today = now.astimezone(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    return today - timedelta(days=(today.weekday() - 4) % 7 + 7)


def _hour_weights(hour: datetime, start: datetime, rng: random.Random) -> float:
    growth = 0.85 + 0.3 * (hour - start) / timedelta(days=DAYS)  # adoption grows over time
    noise = rng.uniform(0.85, 1.15)
    return HOUR_OF_DAY[hour.hour] * DAY_OF_WEEK[hour.weekday()] * growth * noise


def _feature_weights(hour: datetime, base: float, launch: datetime, now: datetime) -> list[float]:
    weights = [f.share * base for f in FEATURES]
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if this_hour - timedelta(hours=SPIKE_HOURS) <= hour < this_hour:
        weights[SPIKE_INDEX] *= SPIKE_FACTOR
    if hour < launch:
        weights[SMART_REPLY_INDEX] = 0.0  # not launched yet
    elif hour < launch + INCIDENT_LENGTH:
        weights[SMART_REPLY_INDEX] = INCIDENT_RATE
    return weights


def _split(total: int, weights: Sequence[float]) -> list[int]:
    """Integer shares of `total` proportional to `weights` that add up to exactly `total`."""
    scale, running, done, counts = total / sum(weights), 0.0, 0, []
    for w in weights:
        running += w * scale
        counts.append(round(running) - done)
        done += counts[-1]
    return counts


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(rng: random.Random, items: Sequence[T], cum: Sequence[float]) -> T:
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


def _tokens(rng: random.Random, median: int) -> int:
    return max(1, int(rng.lognormvariate(math.log(median), 0.55)))


class Generator:
    """Yields `(ValidEvent, team slug)` in time order; the same seed gives the same events."""

    def __init__(self, count: int, now: datetime, seed: int) -> None:
        self.rng = random.Random(seed)
        self.count, self.now = count, now
        day0 = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = day0 - timedelta(days=DAYS - 1)  # 35 calendar days, today included
        self.launch = launch_friday(now)
        self.fixed = self.launch + INCIDENT_LENGTH
        # Zipf-like end users: a few heavy users, a long tail.
        self.users = [f"user-{i:03d}" for i in range(1, USERS + 1)]
        self.user_cum = _cumulative([1 / rank**1.1 for rank in range(1, USERS + 1)])
        # Per feature: choices and cumulative weights, built once instead of per event.
        self.teams = [
            ([t for t, _ in f.teams], _cumulative([w for _, w in f.teams])) for f in FEATURES
        ]
        self.models = [
            ([MODELS[m] for m, _ in f.models], _cumulative([w for _, w in f.models]))
            for f in FEATURES
        ]

    def _hours(self) -> list[tuple[datetime, float, list[float]]]:
        hours: list[tuple[datetime, float, list[float]]] = []
        hour = self.start
        while hour < self.now:
            span = min(3600.0, (self.now - hour).total_seconds())
            base = _hour_weights(hour, self.start, self.rng) * span / 3600
            features = _feature_weights(hour, base, self.launch, self.now)
            hours.append((hour, span, features))
            hour += timedelta(hours=1)
        return hours

    def __iter__(self) -> Iterator[tuple[ValidEvent, str | None]]:
        hours = self._hours()
        counts = _split(self.count, [sum(f) for _, _, f in hours])
        n = 0
        for (hour, span, weights), count in zip(hours, counts, strict=True):
            cum = _cumulative(weights)
            for _ in range(count):
                index = _pick(self.rng, range(len(FEATURES)), cum)
                ts = hour + timedelta(seconds=self.rng.random() * span)
                n += 1
                yield self._event(n, ts, index)

    def _event(self, n: int, ts: datetime, index: int) -> tuple[ValidEvent, str | None]:
        rng, feature = self.rng, FEATURES[index]
        team = _pick(rng, *self.teams[index])
        model = _pick(rng, *self.models[index])
        if feature.name == DRIFT_FEATURE and self.now - ts < timedelta(hours=DRIFT_HOURS):
            model = MODELS[DRIFT_MODEL] if rng.random() < DRIFT_SHARE else model
        incident = feature.name == SMART_REPLY and ts < self.fixed
        input_tokens = _tokens(rng, feature.input_median)
        output_tokens = _tokens(rng, INCIDENT_OUTPUT_MEDIAN if incident else feature.output_median)
        cache_read = cache_write = 0
        if model.caches and rng.random() < feature.cache_rate:
            cached = int(input_tokens * rng.uniform(0.4, 0.9))
            # Anthropic bills writing the cache; about one cached call in ten is that write.
            if model.provider == "anthropic" and rng.random() < 0.1:
                cache_write = cached
            else:
                cache_read = cached
        latency = model.first_token_ms * rng.lognormvariate(0, 0.3)
        latency += output_tokens * model.ms_per_output_token
        status = self._status(incident)
        if status != 200:
            # Rate-limited and failed calls are not billed; 500s are mostly slow timeouts.
            input_tokens = output_tokens = cache_read = cache_write = 0
            latency = rng.uniform(20, 200) if status == 429 else rng.uniform(2_000, 30_000)
        event = ValidEvent(
            event_id=f"demo-{n}",
            timestamp=ts,
            provider=model.provider,
            model=model.name,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            team=team,
            feature=feature.name,
            endpoint=feature.endpoint,
            user_id=_pick(rng, self.users, self.user_cum) if feature.end_users else "",
            environment="staging" if rng.random() < 0.08 else "production",
            latency_ms=round(latency, 1),
            status_code=status,
        )
        return event, team

    def _status(self, incident: bool) -> int:
        roll = self.rng.random()
        # The runaway loop also ran into the provider's rate limits.
        if roll < (0.06 if incident else 0.015):
            return 429
        return 500 if roll > 0.995 else 200


def store(
    demo: DemoTenant,
    events: Iterable[tuple[ValidEvent, str | None]],
    total: int,
    now: datetime,
    progress: Progress | None = None,
) -> int:
    """Store through the team's own ingest key, CHUNK events per call, like real clients."""
    buffers: dict[str | None, list[tuple[ValidEvent, int | None]]] = {
        k: [] for k in demo.ingest_keys
    }
    stored = 0

    def flush(slug: str | None) -> None:
        nonlocal stored
        stored += store_events(demo.ingest_keys[slug], buffers[slug], now)
        buffers[slug] = []
        if progress:
            progress(stored, total)

    for event, slug in events:
        buffers[slug].append((event, demo.team_ids[slug] if slug else None))
        if len(buffers[slug]) >= CHUNK:
            flush(slug)
    for slug, buffer in buffers.items():
        if buffer:
            flush(slug)
    return stored


def seed(
    events: int = DEFAULT_EVENTS,
    rng_seed: int = 42,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> Summary:
    """Create the demo tenant and its history up to `now`, then roll it up; all or nothing.

    The same seed, count and `now` give the same events; `now` defaults to the clock.
    """
    now = now or timezone.now()
    # One transaction: an interrupted seed leaves no half-filled tenant that the next
    # `make demo` would mistake for a finished one.
    with transaction.atomic():
        demo = set_up_tenant()
        stored = store(demo, Generator(events, now, rng_seed), events, now, progress)
        roll_up_all_pending(demo.tenant.pk)
        set_up_invoices(demo.tenant)
        set_up_budgets(demo.tenant, now)
        detect_recent_anomalies(demo.tenant, now)
    totals = DailyRollup.objects.for_tenant(demo.tenant).aggregate(
        cost=Sum("cost_usd"), unpriced=Sum("unpriced_requests"), days=Count("day", distinct=True)
    )
    return Summary(
        stored, totals["cost"] or Decimal(0), totals["days"], totals["unpriced"] or 0, demo.tokens
    )


def detect_recent_anomalies(tenant: Tenant, now: datetime) -> None:
    """Run the hourly detector over the last week, as if it had been running all along."""
    last = last_complete_hour(now)
    detect(tenant, last - timedelta(days=7), last)


def set_up_invoices(tenant: Tenant) -> None:
    """Last month's invoices finalized, as finance would have sent them; this month's drafts."""
    this_month = months.current_month(tenant.timezone)
    billing.generate_month(tenant, months.previous_month(this_month), finalize=True)
    billing.generate_month(tenant, this_month)
