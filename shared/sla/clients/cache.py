"""The latest budget snapshot per SLO, cached in Redis in front of the store.

Redis is an accelerator, never a dependency: when it is down or slow, reads go to
PostgreSQL and writes to the cache are skipped, and no request fails because of it.
An outage is logged once as a warning when it starts and once as info when Redis
answers again; in between Redis is left alone for a short while after each failure so
that requests do not each wait for a socket timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, Protocol

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sla.model.snapshot import BudgetSnapshot

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS: Final = 60
"""``SLA_CACHE_TTL_SECONDS``'s default: one evaluation tick."""

SOCKET_TIMEOUT_SECONDS: Final = 0.25
"""Redis answers a local MGET in well under a millisecond; a quarter second means it
is in trouble, and PostgreSQL answers the same read in a few milliseconds."""

RETRY_AFTER_SECONDS: Final = 5.0
"""How long to go straight to the store after a Redis failure before trying again."""

KEY_PREFIX: Final = "sla:budget:latest:"

STAMP_LENGTH: Final = 27
"""``YYYY-MM-DDTHH:MM:SS.ffffffZ``: every stored value starts with its evaluation
time at this fixed width, so Redis can compare times as strings."""

# Writes a snapshot only if it is not older than the one cached: evaluations finish
# in any order, and a late one must not hide a newer budget until the TTL runs out.
_PUT_NEWER = """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    local value = ARGV[i + 1]
    local cached = redis.call('GET', key)
    if not cached or string.sub(cached, 1, STAMP) <= string.sub(value, 1, STAMP) then
        redis.call('SET', key, value, 'EX', ttl)
    end
end
return #KEYS
""".replace("STAMP", str(STAMP_LENGTH))


class LatestSnapshots(Protocol):
    """What the cache falls back to: :meth:`Store.latest_snapshots`."""

    async def latest_snapshots(
        self, slos: Sequence[str]
    ) -> dict[str, BudgetSnapshot]: ...


def _stamp(evaluated_at: datetime) -> str:
    return evaluated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode(snapshot: BudgetSnapshot) -> str:
    return _stamp(snapshot.evaluated_at) + snapshot.model_dump_json()


def _decode(value: bytes) -> BudgetSnapshot | None:
    try:
        return BudgetSnapshot.model_validate_json(value[STAMP_LENGTH:])
    except ValueError:
        # Written by another version of the snapshot model: a miss, not a failure.
        return None


def connect_redis(
    url: str, *, socket_timeout: float = SOCKET_TIMEOUT_SECONDS
) -> redis.Redis:
    """A client that fails fast: short timeouts and no retries of its own."""
    client: redis.Redis = redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        # redis-py retries three times by default; the cache's answer to a failure
        # is the store, at once.
        retry=Retry(NoBackoff(), 0),
    )
    return client


class BudgetCache:
    """Latest snapshots by SLO: Redis first, the store for what Redis lacks.

    ``client`` None means no Redis is configured: every read goes to the store.
    """

    def __init__(
        self,
        client: redis.Redis | None,
        store: LatestSnapshots,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        key_prefix: str = KEY_PREFIX,
        retry_after: float = RETRY_AFTER_SECONDS,
    ) -> None:
        self._client = client
        self._store = store
        self._ttl_seconds = ttl_seconds
        self._key_prefix = key_prefix
        self._retry_after = retry_after
        self._healthy = True
        self._skip_until = 0.0
        self._put_newer = None if client is None else client.register_script(_PUT_NEWER)

    @classmethod
    def from_url(
        cls,
        url: str | None,
        store: LatestSnapshots,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        socket_timeout: float = SOCKET_TIMEOUT_SECONDS,
        key_prefix: str = KEY_PREFIX,
    ) -> BudgetCache:
        client = (
            None if url is None else connect_redis(url, socket_timeout=socket_timeout)
        )
        return cls(client, store, ttl_seconds=ttl_seconds, key_prefix=key_prefix)

    async def get_latest(self, slos: Sequence[str]) -> dict[str, BudgetSnapshot]:
        """The newest snapshot of each SLO named that has one."""
        wanted = list(dict.fromkeys(slos))
        found = await self._cached(wanted)
        missing = [slo for slo in wanted if slo not in found]
        if missing:
            from_store = await self._store.latest_snapshots(missing)
            found.update(from_store)
            await self.put(from_store.values())
        return found

    async def put(self, snapshots: Iterable[BudgetSnapshot]) -> None:
        """Cache snapshots unless a newer one of the same SLO is cached."""
        batch = list(snapshots)
        if not batch or self._put_newer is None or not self._worth_trying():
            return
        keys = [self._key(snapshot.slo) for snapshot in batch]
        values = [_encode(snapshot) for snapshot in batch]
        await self._call(self._put_newer(keys=keys, args=[self._ttl_seconds, *values]))

    async def invalidate(self, slos: Sequence[str]) -> None:
        """Forget the cached snapshots of these SLOs (best effort)."""
        if not slos or self._client is None or not self._worth_trying():
            return
        await self._call(self._client.delete(*(self._key(slo) for slo in slos)))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _cached(self, slos: list[str]) -> dict[str, BudgetSnapshot]:
        if not slos or self._client is None or not self._worth_trying():
            return {}
        values = await self._call(self._client.mget([self._key(slo) for slo in slos]))
        if values is None:
            return {}
        decoded = (
            (slo, _decode(value))
            for slo, value in zip(slos, values, strict=True)
            if value
        )
        return {slo: snapshot for slo, snapshot in decoded if snapshot is not None}

    def _key(self, slo: str) -> str:
        return self._key_prefix + slo

    def _worth_trying(self) -> bool:
        return self._healthy or time.monotonic() >= self._skip_until

    async def _call(self, command: Any) -> Any:
        """Await a Redis command; on failure note the outage and return None."""
        try:
            result = await command
        except (RedisError, OSError) as error:
            self._note_failure(error)
            return None
        self._note_success()
        return result

    def _note_failure(self, error: BaseException) -> None:
        self._skip_until = time.monotonic() + self._retry_after
        if self._healthy:
            self._healthy = False
            logger.warning(
                "Redis cache unavailable, reading budgets from PostgreSQL: %s",
                type(error).__name__,
            )

    def _note_success(self) -> None:
        if not self._healthy:
            self._healthy = True
            logger.info("Redis cache available again")
