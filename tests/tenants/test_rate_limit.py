"""The per-key rate limit as counted in Redis: one counter per key and minute, shared by every
web process, that expires with its window."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from tenants.models import ApiKey
from tests.conftest import World, event, post_json

URL = "/api/v1/events"
requires_redis = pytest.mark.skipif(
    "redis" not in settings.CACHES["default"]["BACKEND"].lower(), reason="needs Redis"
)


def _redis() -> Any:
    return cache._cache.get_client(write=True)  # type: ignore[attr-defined]


@requires_redis
def test_it_keeps_limiting_after_redis_forgets_its_scripts(world: World) -> None:
    ApiKey.objects.for_tenant(world.tenant).filter(pk=world.ingest.key.pk).update(
        rate_limit_per_minute=2
    )
    client = Client()
    first = post_json(client, URL, event(1), world.ingest).status_code
    _redis().script_flush()  # as after a Redis restart
    codes = [post_json(client, URL, event(i), world.ingest).status_code for i in (2, 3)]
    assert [first, *codes] == [202, 202, 429]


@requires_redis
def test_it_counts_each_request_once_in_a_counter_that_expires(world: World) -> None:
    client = Client()
    for i in range(3):
        post_json(client, URL, event(i), world.ingest)
    window = int(time.time() // 60)
    name = cache.make_and_validate_key(f"costboard:rate:{world.ingest.key.prefix}:{window}")
    if _redis().get(name) is None:  # the minute turned between the requests and now
        name = cache.make_and_validate_key(f"costboard:rate:{world.ingest.key.prefix}:{window - 1}")
    assert 1 <= int(_redis().get(name)) <= 3
    assert 0 < _redis().ttl(name) <= 120
