"""webhook-intake's batch claims on processed_events: one statement per claim."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sla.clients.alert_claims import AlertClaims
from sla.clients.store import Store
from sla.clients.store.store import pool_of

SOURCE = "webhook-intake dev.sla.alert.received"


class CountingPool:
    """The store's pool, noting each statement its connections are given."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.statements: list[str] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as connection:
            yield _Counting(connection, self.statements)


class _Counting:
    def __init__(self, connection: Any, statements: list[str]) -> None:
        self._connection = connection
        self._statements = statements

    async def fetch(self, query: str, *args: Any) -> Any:
        self._statements.append(query)
        return await self._connection.fetch(query, *args)

    async def execute(self, query: str, *args: Any) -> Any:
        self._statements.append(query)
        return await self._connection.execute(query, *args)


def counted(
    store: Store, *, retention_days: int = 35
) -> tuple[AlertClaims, CountingPool]:
    claims = AlertClaims(store, source=SOURCE, retention_days=retention_days)
    pool = CountingPool(pool_of(store))
    claims._pool = pool
    return claims, pool


async def age(store: Store, ids: Sequence[str], *, days: int) -> None:
    async with pool_of(store).acquire() as connection:
        await connection.execute(
            "UPDATE processed_events SET processed_at = now() - make_interval("
            "days => $3) WHERE source = $1 AND id = ANY($2::text[])",
            SOURCE,
            list(ids),
            days,
        )


async def test_one_statement_sorts_claimed_processed_and_busy_ids(
    store: Store,
) -> None:
    claims, pool = counted(store)
    await claims.claim(["done", "held"], lease_seconds=60)
    await claims.record(["done"])
    pool.statements.clear()

    batch = await claims.claim(["new", "done", "held"], lease_seconds=60)

    assert (batch.claimed, batch.processed, batch.busy) == (
        {"new"},
        {"done"},
        {"held"},
    )
    assert len(pool.statements) == 1


async def test_a_new_notification_costs_a_claim_and_a_record(store: Store) -> None:
    claims, pool = counted(store)

    batch = await claims.claim(["a", "b", "c"], lease_seconds=60)
    await claims.record(sorted(batch.claimed))
    again = await claims.claim(["a", "b", "c"], lease_seconds=60)

    assert batch.claimed == {"a", "b", "c"}
    assert again.processed == {"a", "b", "c"}
    assert not again.claimed and not again.busy
    assert len(pool.statements) == 3


async def test_an_expired_claim_is_claimed_again(store: Store) -> None:
    claims, _ = counted(store)
    await claims.claim(["a"], lease_seconds=0)

    batch = await claims.claim(["a"], lease_seconds=60)

    assert batch.claimed == {"a"}


async def test_a_released_claim_is_claimed_again(store: Store) -> None:
    claims, _ = counted(store)
    await claims.claim(["a", "b"], lease_seconds=60)
    await claims.release(["a"])

    batch = await claims.claim(["a", "b"], lease_seconds=60)

    assert (batch.claimed, batch.busy) == ({"a"}, {"b"})


async def test_an_id_processed_before_the_retention_is_claimed_again(
    store: Store,
) -> None:
    claims, _ = counted(store, retention_days=35)
    await claims.claim(["old", "recent"], lease_seconds=60)
    await claims.record(["old", "recent"])
    await age(store, ["old"], days=36)
    await age(store, ["recent"], days=34)

    batch = await claims.claim(["old", "recent"], lease_seconds=60)

    assert (batch.claimed, batch.processed, batch.busy) == (
        {"old"},
        {"recent"},
        frozenset(),
    )
