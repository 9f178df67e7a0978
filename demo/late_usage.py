"""Late usage for the demo: calls dated last month that arrive after its invoices were
finalized, so this month's drafts carry correction lines (what the FOCUS check exports)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import transaction

from billing import months
from billing import services as billing
from demo.story import MODELS
from ingest.services import store_events
from ingest.validation import ValidEvent
from rollups.services import roll_up_all_pending
from tenants.models import ApiKey, Scope, Tenant

LATE_TEAMS = ("search", "support", "platform")
LATE_MODELS = ("gpt-4o", "claude-sonnet-4-0", "gemini-2.0-flash")


def _keys(tenant: Tenant) -> dict[str, ApiKey]:
    """Each late team's own ingest key, as its clients would send with."""
    keys = ApiKey.objects.for_tenant(tenant).filter(
        scope=Scope.INGEST, team__slug__in=LATE_TEAMS, revoked_at__isnull=True
    )
    return {key.team.slug: key for key in keys.select_related("team") if key.team}


def _events(month_end: datetime, count: int, seed: int) -> list[tuple[str, ValidEvent]]:
    # The last day of the month: a batch a client buffered and only sent days later.
    rng = random.Random(seed)
    out = []
    for n in range(count):
        model = MODELS[LATE_MODELS[n % len(LATE_MODELS)]]
        team = LATE_TEAMS[n % len(LATE_TEAMS)]
        at = month_end - timedelta(seconds=1 + rng.random() * 86_000)
        event = ValidEvent(
            event_id=f"demo-late-{seed}-{n}", timestamp=at, provider=model.provider,
            model=model.name, input_tokens=rng.randint(500, 5_000),
            output_tokens=rng.randint(50, 800), cache_read_tokens=0, cache_write_tokens=0,
            team=team, feature="late-batch",
        )  # fmt: skip
        out.append((team, event))
    return out


def add_late_usage(tenant: Tenant, now: datetime, count: int = 60, seed: int = 7) -> int:
    """Store `count` calls dated on the last day of last month, roll them up and regenerate
    this month's drafts, which bill them as adjustments; returns how many events were new."""
    this_month = months.current_month(tenant.timezone, now)
    _, end = months.window(months.previous_month(this_month), tenant.timezone)
    keys, stored = _keys(tenant), 0
    with transaction.atomic():
        for team, event in _events(end, count, seed):
            stored += store_events(keys[team], [(event, keys[team].team_id)], now)
        roll_up_all_pending(tenant.pk)
        billing.generate_month(tenant, this_month, now=now)
    return stored
