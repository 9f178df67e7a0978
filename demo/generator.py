"""The demo's events, generated in time order from `demo.story`; the same seed, count and
`now` give the same events."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from demo.story import (
    CUSTOMER_TIERS,
    DAY_OF_WEEK,
    DAYS,
    DRIFT_FEATURE,
    DRIFT_HOURS,
    DRIFT_MODEL,
    DRIFT_SHARE,
    FEATURES,
    GROWTH_END,
    GROWTH_START,
    HOUR_OF_DAY,
    INCIDENT_429_SHARE,
    INCIDENT_LENGTH,
    INCIDENT_OUTPUT_MEDIAN,
    INCIDENT_RATE,
    MODELS,
    PROMPT_KEY,
    PROMPT_ROLLOUTS,
    SMART_REPLY,
    SMART_REPLY_INDEX,
    SPIKE_FACTOR,
    SPIKE_HOURS,
    SPIKE_INDEX,
    STATUS_MIX,
    STORM_DAYS_AGO,
    STORM_FACTOR,
    STORM_HOUR,
    STORM_MIX,
    TIER_KEY,
    USERS,
    Feature,
)
from ingest.validation import ValidEvent

T = TypeVar("T")


def launch_friday(now: datetime) -> datetime:
    """10:00 UTC on the Friday 7-13 days ago: the whole weekend after it is in the past."""
    today = now.astimezone(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    return today - timedelta(days=(today.weekday() - 4) % 7 + 7)


def storm_hour(now: datetime) -> datetime:
    """The start of the retry storm's hour: recent, but clear of the incidents of the last
    hours that the anomaly detector is meant to find."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=STORM_DAYS_AGO) + timedelta(hours=STORM_HOUR)


def _hour_weight(hour: datetime, start: datetime, rng: random.Random) -> float:
    progress = (hour - start) / timedelta(days=DAYS)
    growth = GROWTH_START + (GROWTH_END - GROWTH_START) * progress
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
    if hour == storm_hour(now):
        weights = [w * STORM_FACTOR for w in weights]  # every failure retried, some twice
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


def _choices(pairs: Sequence[tuple[T, float]]) -> tuple[list[T], list[float]]:
    return [item for item, _ in pairs], _cumulative([w for _, w in pairs])


def _tokens(rng: random.Random, median: int) -> int:
    return max(1, int(rng.lognormvariate(math.log(median), 0.55)))


class Generator:
    """Yields `(ValidEvent, team slug)` in time order; the same seed gives the same events."""

    def __init__(self, count: int, now: datetime, seed: int) -> None:
        self.rng = random.Random(seed)
        self.count, self.now = count, now
        day0 = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = day0 - timedelta(days=DAYS - 1)  # DAYS calendar days, today included
        self.launch = launch_friday(now)
        self.fixed = self.launch + INCIDENT_LENGTH
        self.storm = storm_hour(now)
        # Zipf-like end users: a few heavy users, a long tail.
        self.users = [f"user-{i:03d}" for i in range(1, USERS + 1)]
        self.user_cum = _cumulative([1 / rank**1.1 for rank in range(1, USERS + 1)])
        # Choices and cumulative weights, built once instead of per event.
        self.teams = [_choices(f.teams) for f in FEATURES]
        self.models = [_choices([(MODELS[m], w) for m, w in f.models]) for f in FEATURES]
        self.endpoints = [_choices(f.endpoints) for f in FEATURES]
        self.statuses, self.storm_statuses = _choices(STATUS_MIX), _choices(STORM_MIX)
        self.tiers = _choices(CUSTOMER_TIERS)

    def _hours(self) -> list[tuple[datetime, float, list[float]]]:
        hours: list[tuple[datetime, float, list[float]]] = []
        hour = self.start
        while hour < self.now:
            span = min(3600.0, (self.now - hour).total_seconds())
            base = _hour_weight(hour, self.start, self.rng) * span / 3600
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
        status = self._status(ts, incident)
        if status >= 400:
            # Failed calls are not billed; 429s come back at once, 5xx are mostly slow timeouts.
            input_tokens = output_tokens = cache_read = cache_write = 0
            latency = rng.uniform(20, 200) if status < 500 else rng.uniform(2_000, 30_000)
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
            endpoint=_pick(rng, *self.endpoints[index]),
            user_id=_pick(rng, self.users, self.user_cum) if feature.end_users else "",
            environment="staging" if rng.random() < 0.08 else "production",
            # Whole milliseconds, as most clients time calls (and sums of them stay exact).
            latency_ms=float(round(latency)),
            status_code=status,
            tags=self._tags(ts, feature),
        )
        return event, team

    def _status(self, ts: datetime, incident: bool) -> int:
        if self.storm <= ts < self.storm + timedelta(hours=1):
            return _pick(self.rng, *self.storm_statuses)
        if incident and self.rng.random() < INCIDENT_429_SHARE:
            return 429
        return _pick(self.rng, *self.statuses)

    def _tags(self, ts: datetime, feature: Feature) -> dict[str, str]:
        """`prompt_version` on every call; `customer_tier` on calls made for an end user
        (internal jobs such as code review serve no customer)."""
        tags = {PROMPT_KEY: self._prompt_version(ts)}
        if feature.end_users:
            tags[TIER_KEY] = _pick(self.rng, *self.tiers)
        return tags

    def _prompt_version(self, ts: datetime) -> str:
        days = (ts - self.start) / timedelta(days=1)
        roll = self.rng.random()
        # The newest version whose rollout has reached this call; rollouts ramp linearly.
        for version, start, ramp in reversed(PROMPT_ROLLOUTS):
            if roll < min(1.0, max(0.0, (days - start) / ramp)):
                return version
        return PROMPT_ROLLOUTS[0][0]
