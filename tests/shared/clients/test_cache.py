"""The latest-budget cache: Redis first, PostgreSQL when Redis lacks or fails."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis

from sla.clients.cache import BudgetCache, connect_redis
from sla.clients.store import Store
from tests.support.servers import RedisServer
from tests.support.snapshots import budget_snapshot

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CACHE_LOGGER = "sla.clients.cache"


@pytest.fixture
def key_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def redis_client(redis_url: str, key_prefix: str) -> AsyncIterator[redis.Redis]:
    client = connect_redis(redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=key_prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def cache(redis_client: redis.Redis, store: Store, key_prefix: str) -> BudgetCache:
    return BudgetCache(redis_client, store, ttl_seconds=60, key_prefix=key_prefix)


async def test_a_snapshot_put_is_read_from_redis(
    cache: BudgetCache, redis_client: redis.Redis, key_prefix: str
) -> None:
    snapshot = budget_snapshot("shop/checkout", T0)

    await cache.put([snapshot])

    assert await cache.get_latest(["shop/checkout"]) == {"shop/checkout": snapshot}
    ttl = await redis_client.ttl(key_prefix + "shop/checkout")
    assert 0 < ttl <= 60


async def test_a_miss_is_read_from_the_store_and_cached(
    cache: BudgetCache, store: Store, redis_client: redis.Redis, key_prefix: str
) -> None:
    snapshot = budget_snapshot("shop/checkout", T0)
    await store.put_snapshots([snapshot])

    assert await cache.get_latest(["shop/checkout", "shop/none"]) == {
        "shop/checkout": snapshot
    }
    assert await redis_client.exists(key_prefix + "shop/checkout") == 1


async def test_an_older_snapshot_does_not_replace_a_newer_one(
    cache: BudgetCache,
) -> None:
    newer = budget_snapshot("shop/checkout", T0 + timedelta(minutes=1), good=999)
    older = budget_snapshot("shop/checkout", T0, good=900)

    await cache.put([newer])
    await cache.put([older])

    assert await cache.get_latest(["shop/checkout"]) == {"shop/checkout": newer}


async def test_invalidate_sends_the_next_read_to_the_store(
    cache: BudgetCache, store: Store
) -> None:
    cached = budget_snapshot("shop/checkout", T0, good=999)
    stored = budget_snapshot("shop/checkout", T0 + timedelta(minutes=1), good=990)
    await cache.put([cached])
    await store.put_snapshots([stored])

    await cache.invalidate(["shop/checkout"])

    assert await cache.get_latest(["shop/checkout"]) == {"shop/checkout": stored}


async def test_without_redis_every_read_goes_to_the_store(store: Store) -> None:
    snapshot = budget_snapshot("shop/checkout", T0)
    await store.put_snapshots([snapshot])
    cache = BudgetCache.from_url(None, store)

    await cache.put([snapshot])
    await cache.invalidate(["shop/checkout"])

    assert await cache.get_latest(["shop/checkout"]) == {"shop/checkout": snapshot}


async def test_a_redis_outage_falls_back_and_warns_once(
    store: Store, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    first = budget_snapshot("shop/checkout", T0, good=999)
    second = budget_snapshot("shop/checkout", T0 + timedelta(minutes=1), good=995)
    client = connect_redis(redis_server.url)
    cache = BudgetCache(client, store, ttl_seconds=60, retry_after=0)
    await store.put_snapshots([first])
    await cache.put([first])
    caplog.set_level(logging.INFO, logger=CACHE_LOGGER)

    redis_server.stop()
    await store.put_snapshots([second])
    reads = [await cache.get_latest(["shop/checkout"]) for _ in range(5)]
    await cache.put([second])
    await cache.invalidate(["shop/checkout"])

    # Redis still held `first`; the store's newer `second` proves the fallback.
    assert reads == [{"shop/checkout": second}] * 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.name for r in warnings] == [CACHE_LOGGER]

    redis_server.start()  # same port, empty: a restarted Redis keeps nothing here
    assert await cache.get_latest(["shop/checkout"]) == {"shop/checkout": second}
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["Redis cache available again"]
    assert await client.exists("sla:budget:latest:shop/checkout") == 1
    await cache.close()
