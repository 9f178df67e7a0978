"""Group commit: concurrent small requests of one web process share one database write.

What a client must not notice: every answer is its own exact count, a 202 still means stored,
an outage still answers 503 to everyone, and nothing waits forever.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from django.db import DatabaseError, OperationalError, connection
from django.utils import timezone

from ingest.groupcommit import GroupCommit
from ingest.models import PendingBatch, UsageEvent
from ingest.services import Share, _event_rows, _write_groups, price_events, write_group
from ingest.validation import validate_event
from tests.conftest import World, event
from tests.server import web_server
from tests.tcp_proxy import TcpProxy, tcp_proxy

EVENTS = "/api/v1/events"


def _server_env(port: int | None = None) -> dict[str, str]:
    s = connection.settings_dict
    return {"DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{port or s['PORT']}/{s['NAME']}"}


def _post_all(base: str, token: str, bodies: list[list[Any]]) -> list[httpx.Response]:
    """Each list of bodies sent one after the other on its own connection, all lists at once."""
    answers: list[httpx.Response] = []
    start = threading.Barrier(len(bodies))

    def client(mine: list[Any]) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
            start.wait()
            for body in mine:
                answers.append(http.post(EVENTS, content=json.dumps(body)))

    threads = [threading.Thread(target=client, args=(mine,)) for mine in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


@pytest.mark.django_db(transaction=True)
def test_it_stores_every_event_id_once_when_many_single_event_clients_overlap(
    world: World,
) -> None:
    # 16 clients, 30 single events each, drawn from 150 ids: every id is sent about 3 times,
    # often at the same moment by clients whose requests share one group write.
    clients, per_client, ids = 16, 30, 150
    bodies = [
        [event(f"o-{(c * 7 + i * 13) % ids}") for i in range(per_client)] for c in range(clients)
    ]
    sent = {b["event_id"] for mine in bodies for b in mine}
    with web_server(_server_env(), workers=2) as base:
        answers = _post_all(base, world.ingest.token, bodies)
    results = [a.json() for a in answers]
    stored = Counter(UsageEvent.objects.for_tenant(world.tenant).values_list("event_id", flat=True))
    batches = PendingBatch.objects.for_tenant(world.tenant)
    assert [a.status_code for a in answers] == [202] * clients * per_client
    assert set(stored) == sent and set(stored.values()) == {1}
    assert sum(r["accepted"] for r in results) == len(sent)
    assert sum(r["duplicates"] for r in results) == clients * per_client - len(sent)
    assert all(r["accepted"] + r["duplicates"] == 1 for r in results)
    # Requests were grouped, and the pending batches still add up to what was offered.
    assert batches.count() < clients * per_client
    assert sum(batches.values_list("offered", flat=True)) == clients * per_client


@pytest.mark.django_db(transaction=True)
def test_it_counts_an_event_id_sent_twice_in_one_group_once(world: World) -> None:
    now = timezone.now()

    def share(*ids: str, rejected: int = 0) -> Share:
        valid = [(validate_event(event(i), now)[0], world.team.pk) for i in ids]
        priced = price_events(world.ingest.key, valid)  # type: ignore[arg-type]
        return Share(_event_rows(world.ingest.key, priced, now), rejected, now)

    first = write_group(world.tenant.pk, [share("a", "b"), share("b", "c", rejected=2), share("a")])
    again = write_group(world.tenant.pk, [share("c"), share("d")])
    stored = UsageEvent.objects.for_tenant(world.tenant)
    assert first == [2, 1, 0] and again == [0, 1]
    assert sorted(stored.values_list("event_id", flat=True)) == ["evt-a", "evt-b", "evt-c", "evt-d"]
    # One pending batch per group, with the group's sums.
    batches = PendingBatch.objects.for_tenant(world.tenant).order_by("pk")
    assert list(batches.values_list("offered", "rejected")) == [(5, 2), (2, 0)]
    assert stored.get(event_id="evt-c").batch_id == batches[0].pk


@contextmanager
def _proxy() -> Iterator[TcpProxy]:
    """A proxy to the test database that the test can cut, as a network outage would."""
    s = connection.settings_dict
    with tcp_proxy(s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432)) as proxy:
        yield proxy


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_to_every_concurrent_request_when_the_database_goes_away(
    world: World,
) -> None:
    # The key stays cached in the server, so only the writes meet the outage.
    with _proxy() as proxy:
        env = {**_server_env(proxy.port), "API_KEY_CACHE_SECONDS": "600"}
        with web_server(env, workers=1) as base:
            warm = _post_all(base, world.ingest.token, [[event("warm")]])
            proxy.cut()
            answers = _post_all(base, world.ingest.token, [[event(f"x-{c}")] for c in range(12)])
    assert warm[0].status_code == 202
    assert [a.status_code for a in answers] == [503] * 12
    assert all(int(a.headers["Retry-After"]) > 0 for a in answers)
    assert answers[0].json() == {"detail": "storage is unavailable, retry later"}
    stored = UsageEvent.objects.for_tenant(world.tenant).values_list("event_id", flat=True)
    assert list(stored) == ["evt-warm"]


def test_it_hands_each_request_of_a_group_its_own_result() -> None:
    # A slow write lets the other requests queue: they are written together, next time.
    writes: list[list[int]] = []

    def write(key: str, payloads: list[int]) -> list[int]:
        writes.append(payloads)
        time.sleep(0.2)
        return [p * 10 for p in payloads]

    groups: GroupCommit[str, int, int] = GroupCommit(write)
    results = _run_concurrently(groups, range(8))
    assert results == {p: p * 10 for p in range(8)}
    assert len(writes) < 8 and sorted(p for w in writes for p in w) == list(range(8))


def test_it_fails_every_request_of_a_group_when_its_write_fails() -> None:
    def write(key: str, payloads: list[int]) -> list[int]:
        time.sleep(0.1)
        raise OperationalError("connection refused")

    results = _run_concurrently(GroupCommit(write), range(6))
    assert all(isinstance(r, OperationalError) for r in results.values()) and len(results) == 6


def test_it_gives_up_waiting_instead_of_hanging_when_a_write_never_ends() -> None:
    release = threading.Event()

    def write(key: str, payloads: list[int]) -> list[int]:
        release.wait(10)  # a database that does not answer
        return payloads

    groups: GroupCommit[str, int, int] = GroupCommit(write, wait_seconds=0.3)
    started = time.monotonic()
    results = _run_concurrently(groups, range(4), until=release)
    # The first request wrote (when released); the queued ones withdrew and failed as an
    # outage, so they answer 503 and nothing of them is stored.
    assert time.monotonic() - started < 5
    assert sorted(p for p, r in results.items() if isinstance(r, OperationalError)) == [1, 2, 3]
    assert results[0] == 0


def _run_concurrently(
    groups: GroupCommit[str, int, int], payloads: range, until: threading.Event | None = None
) -> dict[int, int | BaseException]:
    results: dict[int, int | BaseException] = {}

    def run(p: int) -> None:
        try:
            results[p] = groups.run("tenant", p)
        except Exception as exc:
            results[p] = exc

    threads = [threading.Thread(target=run, args=(p,)) for p in payloads]
    threads[0].start()
    time.sleep(0.05)  # the first one leads; the others arrive while it writes
    for t in threads[1:]:
        t.start()
    if until is not None:
        for t in threads[1:]:
            t.join()  # the followers give up first ...
        until.set()  # ... then the write ends
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_it_fails_only_the_request_whose_data_the_database_refuses(world: World) -> None:
    now = timezone.now()

    def share(n: str, **fields: Any) -> Share:
        valid = [(validate_event(event(n), now)[0], world.team.pk)]
        rows = _event_rows(world.ingest.key, price_events(world.ingest.key, valid), now)  # type: ignore[arg-type]
        return Share([{**row, **fields} for row in rows], 0, now)

    # PostgreSQL text cannot hold a NUL character (validation refuses one, so it is put in the
    # row here, standing for any value the database refuses); the others are stored.
    results = _write_groups(world.tenant.pk, [share("a"), share("b", feature="x\x00y"), share("c")])
    stored = UsageEvent.objects.for_tenant(world.tenant).values_list("event_id", flat=True)
    assert results[0] == results[2] == 1 and isinstance(results[1], DatabaseError)
    assert sorted(stored) == ["evt-a", "evt-c"]
