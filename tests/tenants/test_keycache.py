"""The key cache in one process: cheap while Redis answers, never trusted while it does not."""

from __future__ import annotations

import itertools
import time
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from tenants import keycache
from tenants.models import ApiKey
from tenants.selectors import api_key_from_token
from tests.conftest import World

CLOSED_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1: connection refused
    }
}


def test_it_reads_the_revocation_stamp_at_most_every_half_second(
    world: World, monkeypatch: Any, django_assert_num_queries: Any
) -> None:
    reads: list[float] = []
    real_get = cache.get

    def counting_get(key: str, *args: Any, **kwargs: Any) -> Any:
        if key == keycache.STAMP_KEY:
            reads.append(time.monotonic())
        return real_get(key, *args, **kwargs)

    monkeypatch.setattr(cache, "get", counting_get)
    assert api_key_from_token(world.ingest.token) is not None  # read from the database once
    calls, until = 0, time.monotonic() + 1.2
    with django_assert_num_queries(0):
        while time.monotonic() < until:
            assert api_key_from_token(world.ingest.token) is not None
            calls += 1
    assert calls > 1000 and 2 <= len(reads) <= 4, (calls, len(reads))
    # Spaced by CHECK_SECONDS (less a little: each read is timed after its check began).
    gaps = [b - a for a, b in itertools.pairwise(reads)]
    assert all(gap > keycache.CHECK_SECONDS - 0.1 for gap in gaps), gaps


def test_it_reads_keys_from_the_database_while_redis_is_unreachable(
    world: World, settings: Any, django_assert_num_queries: Any
) -> None:
    assert api_key_from_token(world.ingest.token) is not None  # cached while Redis answered
    settings.CACHES = CLOSED_REDIS
    time.sleep(keycache.CHECK_SECONDS)  # the last successful check is now too old to trust
    for _ in range(3):
        with django_assert_num_queries(1):  # the database each time, never the cache
            assert api_key_from_token(world.ingest.token) is not None
    # Revoked behind this process's back (no announcement can reach it): refused at once.
    ApiKey.objects.for_tenant(world.tenant).filter(pk=world.ingest.key.pk).update(
        revoked_at=timezone.now()
    )
    assert api_key_from_token(world.ingest.token) is None


def test_it_does_not_cache_a_key_read_before_a_revocation_emptied_the_cache(
    world: World,
) -> None:
    time.sleep(keycache.CHECK_SECONDS)  # past any failed stamp read of an earlier test
    generation = keycache.generation()
    assert generation is not None
    key = ApiKey.objects.for_tenant(world.tenant).get(pk=world.ingest.key.pk)
    keycache.announce_revocation()  # between the read and the put, in another thread
    keycache.put("digest", key, generation)
    now = keycache.generation()
    assert now is not None and keycache.get("digest", now) is None
