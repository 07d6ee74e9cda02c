"""What every table's queries share: a connection, a transaction, mapped errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sla.clients.store.failures import mapped_errors


class StoreBase:
    """A pool, or one connection inside a transaction that a caller opened.

    Query modules subclass this and reach the database only through
    :meth:`_connection` and :meth:`_transaction`, so the same method works on its
    own and as part of a caller's :meth:`Store.transaction`.
    """

    def __init__(
        self, pool: Any, *, connection: Any = None, schema: str | None = None
    ) -> None:
        self._pool = pool
        self._bound = connection
        self.schema = schema

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._bound is not None:
            with mapped_errors():
                yield self._bound
            return
        with mapped_errors():
            async with self._pool.acquire() as connection:
                yield connection

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        # Inside a caller's transaction this opens a savepoint, so a failed step
        # undoes only itself and the caller decides about the rest.
        async with self._connection() as connection, connection.transaction():
            yield connection


def affected_rows(status: str) -> int:
    """The row count of a command tag such as ``INSERT 0 3`` or ``DELETE 5``."""
    return int(status.rsplit(" ", 1)[-1])


def to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; asyncpg hands back timestamptz in UTC, this keeps it so."""
    return moment.astimezone(UTC)
