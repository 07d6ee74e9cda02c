"""The store: every table's queries over one asyncpg pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

import asyncpg

from sla.clients.store.catalogue import CatalogueQueries
from sla.clients.store.chunks import ChunkQueries
from sla.clients.store.counters import CounterQueries
from sla.clients.store.decisions import DecisionQueries
from sla.clients.store.delivery import DeliveryQueries
from sla.clients.store.failures import mapped_errors
from sla.clients.store.freezes import FreezeQueries
from sla.clients.store.migrations import migrate
from sla.clients.store.policy_queries import PolicyQueries
from sla.clients.store.records import RetentionResult
from sla.clients.store.snapshots import SnapshotQueries
from sla.clients.store.state_queries import StateQueries

DEFAULT_POOL_SIZE: Final = 10
"""``SLA_DATABASE_POOL_SIZE``'s default."""

CONNECT_TIMEOUT_SECONDS: Final = 5.0
"""Connecting on the same network takes milliseconds; past this the server is down or
overloaded, and the event is better retried by the broker than held."""

COMMAND_TIMEOUT_SECONDS: Final = 30.0
"""A batch of 10,000 snapshots takes about a fifth of a second (bench/bench_store.py);
this bounds a statement stuck on a lock well inside Knative's request timeout."""

APPLICATION_NAME: Final = "sla"


class Store(
    CatalogueQueries,
    SnapshotQueries,
    ChunkQueries,
    FreezeQueries,
    DeliveryQueries,
    DecisionQueries,
    PolicyQueries,
    StateQueries,
    CounterQueries,
):
    """PostgreSQL storage of the catalogue, budgets, chunks, freezes and audit log.

    Open it with :meth:`open`. Every method runs on its own; inside
    ``async with store.transaction() as tx`` the same methods on ``tx`` share one
    transaction, so related rows are written together or not at all.
    Failures raise :class:`~sla.errors.StoreUnavailable` when a retry may help and
    :class:`~sla.errors.StoreError` otherwise.
    """

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        schema: str | None = None,
        apply_migrations: bool = True,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        command_timeout: float = COMMAND_TIMEOUT_SECONDS,
    ) -> Self:
        """Connect, and bring the schema up to date unless told not to.

        ``schema`` puts every table in that PostgreSQL schema (tests give each test
        its own); it is created by the first migration run.
        """
        settings = {"application_name": APPLICATION_NAME}
        if schema is not None:
            settings["search_path"] = schema
        with mapped_errors():
            pool = await asyncpg.create_pool(
                url,
                # One connection ready at start; a function scaled from zero
                # should not wait for ten.
                min_size=1,
                max_size=pool_size,
                timeout=connect_timeout,
                command_timeout=command_timeout,
                server_settings=settings,
            )
        store = cls(pool, schema=schema)
        if apply_migrations:
            try:
                await store.migrate()
            except BaseException:
                await store.close()
                raise
        return store

    async def migrate(self) -> list[int]:
        """Apply due migrations; return their versions (empty when none was due)."""
        async with self._connection() as connection:
            return await migrate(connection, schema=self.schema)

    async def close(self) -> None:
        if self._pool is not None:
            with mapped_errors():
                await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Store]:
        """A store whose methods all run in one transaction, committed at the end
        of the block and rolled back if the block raises."""
        async with self._transaction() as connection:
            yield Store(None, connection=connection, schema=self.schema)

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        async with self._connection() as connection:
            await connection.fetchval("SELECT 1")

    async def apply_retention(
        self, *, retention_days: int, now: datetime | None = None
    ) -> RetentionResult:
        """Drop snapshots, chunks and processed-event ids older than the retention."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        return RetentionResult(
            snapshots=await self.delete_snapshots_before(cutoff),
            chunks=await self.delete_chunks_before(cutoff),
            processed_events=await self.delete_processed_before(cutoff),
        )


def pool_of(store: Store) -> Any:
    """The asyncpg pool under a store, for tests and benchmarks that inspect it."""
    return store._pool
