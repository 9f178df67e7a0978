"""Ingest through the real production server: storage outages and racing clients."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import httpx
import pytest
from django.db import connection

from ingest.models import UsageEvent
from tests.conftest import World, event
from tests.server import web_server


def test_it_answers_503_with_retry_after_when_the_database_is_unreachable() -> None:
    # A real server whose database is a closed port: nothing is accepted, nothing is a 500.
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/costboard"}
    with web_server(env, workers=1) as base:
        response = httpx.post(
            f"{base}/api/v1/events",
            json=event(1),
            headers={"Authorization": "Bearer cb_abc_def"},
            timeout=30,
        )
        ready = httpx.get(f"{base}/readyz", timeout=30)
        alive = httpx.get(f"{base}/healthz", timeout=30)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert ready.status_code == 503 and "database" in ready.text
    assert alive.status_code == 200


def _server_env() -> dict[str, str]:
    return {"DATABASE_URL": _test_database_url()}


def _test_database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_it_stores_an_event_id_once_when_two_clients_race(world: World) -> None:
    batch = {"events": [event(i) for i in range(200)]}
    results: list[dict[str, Any]] = []

    def send(base: str) -> None:
        headers = {"Authorization": f"Bearer {world.ingest.token}"}
        response = httpx.post(f"{base}/api/v1/events", json=batch, headers=headers, timeout=30)
        results.append(response.json())

    with web_server(_server_env(), workers=4) as base:
        threads = [threading.Thread(target=send, args=(base,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sum(r["accepted"] for r in results) == 200
    assert sum(r["duplicates"] for r in results) == 600
    assert UsageEvent.objects.for_tenant(world.tenant).count() == 200


@pytest.mark.django_db(transaction=True)
def test_it_serves_the_api_from_the_production_server(world: World) -> None:
    with web_server(_server_env(), workers=1) as base:
        headers = {"Authorization": f"Bearer {world.ingest.token}"}
        body = json.dumps({"events": [event(1), event(2, model="gpt-4o-mini")]})
        response = httpx.post(f"{base}/api/v1/events", content=body, headers=headers)
        schema = httpx.get(f"{base}/api/schema/")
        docs = httpx.get(f"{base}/api/docs/")
    assert response.status_code == 202 and response.json()["accepted"] == 2
    assert "/api/v1/events" in schema.text
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()


@pytest.mark.django_db(transaction=True)
def test_a_retry_storm_of_shuffled_batches_neither_deadlocks_nor_double_counts(
    world: World,
) -> None:
    # 8 clients resend the same 2,000 ids, each in its own order and batch sizes (COPY batches
    # and grouped small ones): rows sharing ids used to deadlock, answered as a 503 outage.
    ids = [f"storm-{i}" for i in range(2000)]
    clients = 8
    plans = []
    for c in range(clients):
        rng = random.Random(c)
        mine = ids[:]
        rng.shuffle(mine)
        bodies, at = [], 0
        while at < len(mine):
            size = rng.choice([1, 3, 9, 50, 200, 400])
            bodies.append({"events": [event(i) for i in mine[at : at + size]]})
            at += size
        plans.append(bodies)
    answers: list[httpx.Response] = []
    start = threading.Barrier(clients)

    def client(bodies: list[dict[str, Any]]) -> None:
        headers = {"Authorization": f"Bearer {world.ingest.token}"}
        with httpx.Client(timeout=120, headers=headers) as http:
            start.wait()
            for body in bodies:
                answers.append(http.post(f"{base}/api/v1/events", json=body))

    with web_server(_server_env(), workers=4) as base:
        threads = [threading.Thread(target=client, args=(plan,)) for plan in plans]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    statuses = [a.status_code for a in answers]
    assert statuses.count(503) == 0 and set(statuses) == {202}
    assert len(answers) == sum(len(plan) for plan in plans)
    assert sum(a.json()["accepted"] for a in answers) == len(ids)
    assert sum(a.json()["duplicates"] for a in answers) == len(ids) * (clients - 1)
    stored = UsageEvent.objects.for_tenant(world.tenant).filter(event_id__startswith="evt-storm-")
    assert stored.count() == len(ids) == len(set(stored.values_list("event_id", flat=True)))
