"""Tag dimensions: usage by a chosen tag key's values equals the raw events' sums exactly,
(other) and (none) included, however batches arrive, and whatever keys are chosen when."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import Action, AuditEntry
from ingest.models import PendingBatch, UsageEvent
from ingest.services import ingest_events
from rollups import sql
from rollups.models import (
    TAG_ROLLUP_MODELS,
    TAG_SLICES,
    TagDailyRollup,
    TagDailySlice,
    TagDimension,
    TagHourlySlice,
    TagValue,
)
from rollups.services import recompute, roll_up_all_pending, roll_up_pending
from rollups.tags import reroll, set_tag_dimensions
from tenants.scoping import TenantOwned
from tests.conftest import World, event
from tests.rollups.helpers import settled_events

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
START = (NOW - timedelta(days=4)).date().isoformat()
END = (NOW + timedelta(days=1)).date().isoformat()
KEYS = ("tier", "region", "prompt")
CAP = 3

tags = st.dictionaries(st.sampled_from(KEYS), st.sampled_from("abcdefg"), max_size=3)
events = st.fixed_dictionaries(
    {
        "event_id": st.integers(0, 80).map(lambda n: f"e{n}"),
        "timestamp": st.integers(0, 60).map(lambda h: (NOW - timedelta(hours=h)).isoformat()),
        "model": st.sampled_from(["gpt-4o", "gpt-4o-mini"]),
        "environment": st.sampled_from(["production", "staging"]),
        "feature": st.sampled_from(["", "chat", "rag"]),
        "input_tokens": st.integers(0, 5000),
        "status_code": st.sampled_from([200, 500]),
        "cost_usd": st.one_of(st.none(), st.decimals(0, 5, places=9).map(str)),
        "tags": tags,
    }
)
# The first four are read from the tag slices, the others from the full tag rollups.
GROUPINGS = (
    (),
    ("team",),
    ("feature",),
    ("model",),
    ("team", "feature", "model"),
    ("environment", "feature"),
)


def _usage(client: Client, world: World, query: str, status: int = 200) -> Any:
    url = f"/api/v1/usage?from={START}&to={END}&{query}"
    response = client.get(url, **world.read.auth)
    assert response.status_code == status, response.content
    return response.json()


def _raw(world: World, key: str, groups: tuple[str, ...]) -> dict[tuple[Any, ...], list[Any]]:
    """(day, groups..., shown value) -> [requests, errors, cost] from the settled raw events,
    with the cap applied as the merge admits values: the first CAP of a day, in the order
    the test's merges saw them (recorded in TagValue)."""
    admitted = {
        (v.day, v.tag_value) for v in TagValue.objects.for_tenant(world.tenant).filter(tag_key=key)
    }
    out: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
    for e in settled_events(world.tenant):
        day = e.hour.astimezone(UTC).date()
        value = e.tags.get(key, "")
        shown = "(none)" if not value else value if (day, value) in admitted else "(other)"
        dims = {
            "team": world.team.name, "feature": e.feature, "model": e.model,
            "environment": e.environment,
        }  # fmt: skip
        row = out[(day.isoformat(), *(dims[g] for g in groups), shown)]
        row[0] += 1
        row[1] += int(e.status_code >= 400)
        row[2] += e.cost_usd
    return dict(out)


def _assert_slices_match(world: World, key: str) -> None:
    """Each tag slice row is the sum of the full tag rows it stands for."""
    full = TagDailyRollup.objects.for_tenant(world.tenant).filter(tag_key=key)
    slices = TagDailySlice.objects.for_tenant(world.tenant).filter(tag_key=key)
    for name, kept in TAG_SLICES.items():
        for env in (True, False):
            group = ["day", "tag_value", *kept, *(["environment"] if env else [])]
            want = {
                tuple(r[g] for g in group): (r["n"], r["c"])
                for r in full.values(*group).annotate(n=Sum("requests"), c=Sum("cost_usd"))
            }
            rows = slices.filter(grouping=name)
            rows = rows.exclude(environment="") if env else rows.filter(environment="")
            got = {tuple(getattr(r, g) for g in group): (r.requests, r.cost_usd) for r in rows}
            assert got == want, (name, env)


def _assert_matches(world: World, key: str) -> None:
    _assert_slices_match(world, key)
    # Each day admits its first CAP distinct values, no more and (while room is left) no fewer.
    admitted: dict[Any, set[str]] = defaultdict(set)
    for v in TagValue.objects.for_tenant(world.tenant).filter(tag_key=key):
        admitted[v.day].add(v.tag_value)
    seen: dict[Any, set[str]] = defaultdict(set)
    for e in settled_events(world.tenant):
        if e.tags.get(key):
            seen[e.hour.astimezone(UTC).date()].add(e.tags[key])
    assert {d: len(v) for d, v in admitted.items()} == {
        d: min(CAP, len(v)) for d, v in seen.items()
    }
    assert all(admitted[d] <= seen[d] for d in admitted)
    for groups in GROUPINGS:
        group_by = ",".join([*groups, f"tag:{key}"])
        rows = _usage(Client(), world, f"group_by={group_by}")["rows"]
        got = {
            (r["period"], *(r[g] for g in groups), r[f"tag:{key}"]): [
                r["requests"], r["errors"], Decimal(r["cost_usd"])
            ]
            for r in rows
        }  # fmt: skip
        assert got == _raw(world, key, groups)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(events, min_size=1, max_size=10), min_size=1, max_size=5),
    chosen=st.lists(st.sampled_from(KEYS), unique=True, max_size=2),
    later=st.sampled_from(KEYS),
    merge_every=st.integers(1, 3),
)
def test_it_rolls_up_chosen_tags_exactly_with_other_and_none(
    world: World,
    batches: list[list[dict[str, Any]]],
    chosen: list[str],
    later: str,
    merge_every: int,
) -> None:
    with override_settings(TAG_VALUES_PER_DAY=CAP):
        _run(world, batches, chosen, later, merge_every)


def _run(
    world: World, batches: list[list[dict[str, Any]]], chosen: list[str], later: str, every: int
) -> None:
    owned: tuple[type[TenantOwned], ...] = (
        UsageEvent, PendingBatch, TagDimension, *TAG_ROLLUP_MODELS
    )  # fmt: skip
    for model in owned:
        model.unscoped_all_tenants.all().delete()
    set_tag_dimensions(world.tenant, chosen)
    for i, batch in enumerate(batches):
        ingest_events(world.ingest.key, batch)
        if i % every == 0:
            roll_up_pending(world.tenant.pk, max_batches=2)
    for key in chosen:
        _assert_matches(world, key)
    # A key chosen later: events stored before appear once the re-roll ran, none twice,
    # while some batches may still be pending (their merge adds them later).
    added = set_tag_dimensions(world.tenant, [*chosen, later] if later not in chosen else chosen)
    reroll(world.tenant.pk, added)
    _assert_matches(world, later)
    roll_up_all_pending(world.tenant.pk)
    recompute(world.tenant, NOW - timedelta(days=1))
    for key in {*chosen, later}:
        _assert_matches(world, key)


def _seed(world: World) -> None:
    day = NOW.isoformat()
    ingest_events(
        world.ingest.key,
        [
            event(1, timestamp=day, tags={"tier": "pro"}, cost_usd="1.5"),
            event(2, timestamp=day, tags={"tier": "free"}, cost_usd="0.25"),
            event(3, timestamp=day, cost_usd="2"),
        ],
    )
    ingest_events(world.other_ingest.key, [event(9, timestamp=day, tags={"tier": "secret"})])
    roll_up_all_pending(world.tenant.pk)
    roll_up_all_pending(world.other_tenant.pk)


def test_it_re_rolls_history_when_a_key_is_chosen(world: World) -> None:
    _seed(world)
    out = StringIO()
    call_command("set_tag_dimensions", "acme", "tier", stdout=out)
    assert "re-rolled 3 events" in out.getvalue()
    rows = _usage(Client(), world, "group_by=tag:tier")["rows"]
    assert {r["tag:tier"]: r["requests"] for r in rows} == {"pro": 1, "free": 1, "(none)": 1}
    raw = sum(e.cost_usd for e in UsageEvent.objects.for_tenant(world.tenant))
    assert sum(Decimal(r["cost_usd"]) for r in rows) == raw
    dimension = TagDimension.objects.for_tenant(world.tenant).get()
    assert dimension.history_from == NOW.date()
    entry = AuditEntry.objects.for_tenant(world.tenant).get(action=Action.TAG_DIMENSIONS_SET)
    assert entry.details["added"] == ["tier"]


def test_it_filters_by_a_tag_value_and_none(world: World) -> None:
    _seed(world)
    call_command("set_tag_dimensions", "acme", "tier", stdout=StringIO())
    (pro,) = _usage(Client(), world, "tag.tier=pro")["rows"]
    assert pro["requests"] == 1
    (none,) = _usage(Client(), world, "tag.tier=(none)&group_by=model")["rows"]
    assert (none["requests"], none["model"]) == (1, "gpt-4o")


def test_it_refuses_keys_that_are_not_chosen_naming_the_field(world: World) -> None:
    _seed(world)
    call_command("set_tag_dimensions", "acme", "tier", "region", stdout=StringIO())
    bad = _usage(Client(), world, "group_by=tag:colour", status=400)
    assert "colour" in bad["group_by"][0]
    assert "tag.colour" in _usage(Client(), world, "tag.colour=red", status=400)
    assert "give a value" in _usage(Client(), world, "tag.tier=", status=400)["tag.tier"][0]
    assert "tag.tier" in _usage(Client(), world, "tag.tier=a%00b", status=400)
    two = _usage(Client(), world, "group_by=tag:tier,tag:region", status=400)
    assert "one tag key per query" in two["group_by"][0]
    assert "user" in str(_usage(Client(), world, "group_by=user,tag:tier", status=400))


def test_it_never_shows_another_tenants_tag_values(world: World) -> None:
    _seed(world)
    call_command("set_tag_dimensions", "acme", "tier", stdout=StringIO())
    call_command("set_tag_dimensions", "globex", "tier", stdout=StringIO())
    rows = _usage(Client(), world, "group_by=tag:tier")["rows"]
    assert "secret" not in {r["tag:tier"] for r in rows}
    response = Client().get(
        f"/api/v1/usage?from={START}&to={END}&group_by=tag:tier", **world.other_read.auth
    )
    assert [r["tag:tier"] for r in response.json()["rows"]] == ["secret"]


def test_it_drops_rows_of_a_key_no_longer_chosen(world: World) -> None:
    _seed(world)
    call_command("set_tag_dimensions", "acme", "tier", stdout=StringIO())
    call_command("set_tag_dimensions", "acme", stdout=StringIO())
    assert not TagDimension.objects.for_tenant(world.tenant).exists()
    for model in TAG_ROLLUP_MODELS:
        assert not model.objects.for_tenant(world.tenant).exists()
    assert "tag.tier" in _usage(Client(), world, "tag.tier=pro", status=400)


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        (["a", "b", "c", "d", "e", "f"], "at most 5 tag keys"),
        (["a,b"], "no commas"),
        ([" tier"], "must not be empty"),
        (["x" * 129], "at most 128 characters"),
    ],
)
def test_it_tells_why_the_command_refuses_keys(world: World, keys: list[str], words: str) -> None:
    with pytest.raises(CommandError, match=words):
        call_command("set_tag_dimensions", "acme", *keys, stdout=StringIO())
    with pytest.raises(CommandError, match="does not exist"):
        call_command("set_tag_dimensions", "nobody", "tier", stdout=StringIO())


def test_it_answers_per_hour_and_month_by_tag(world: World) -> None:
    _seed(world)
    call_command("set_tag_dimensions", "acme", "tier", stdout=StringIO())
    hours = _usage(Client(), world, "group_by=tag:tier,team&granularity=hour")["rows"]
    hour = NOW.replace(minute=0).isoformat()
    assert sorted((r["period"], r["team"], r["tag:tier"], r["requests"]) for r in hours) == [
        (hour, "search", v, 1) for v in ("(none)", "free", "pro")
    ]
    months = _usage(Client(), world, "group_by=tag:tier&granularity=month&tag.tier=free")
    assert [(r["tag:tier"], r["requests"]) for r in months["rows"]] == [("free", 1)]


def _slice_rows(world: World) -> set[tuple[Any, ...]]:
    out: set[tuple[Any, ...]] = set()
    for model in (TagHourlySlice, TagDailySlice):
        for row in model.objects.for_tenant(world.tenant).values():
            row.pop("id")
            out.add((model.__name__, *sorted(row.items())))
    return out


def test_it_rebuilds_tag_slices_as_the_merge_writes_them(world: World) -> None:
    set_tag_dimensions(world.tenant, ["tier", "region"])
    _seed(world)
    ingest_events(
        world.ingest.key,
        [event(4, timestamp=NOW.isoformat(), feature="rag", tags={"tier": "pro", "region": "eu"})],
    )
    roll_up_all_pending(world.tenant.pk)
    merged = _slice_rows(world)
    assert len(merged) > 20  # every grouping, per environment and over all, per key and value
    for model in (TagHourlySlice, TagDailySlice):
        model.unscoped_all_tenants.all().delete()
    sql.rebuild_tag_slices()  # what an installation or a benchmark with tag rollups only runs
    assert _slice_rows(world) == merged
