"""Migrations: applied from empty, once, under concurrency, and cheaply when done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from sla.clients.store import Migration, Store, bundled_migrations, migrate
from sla.errors import StoreError
from tests.support.schemas import drop_schema

TABLES = [
    "audit_log",
    "budget_snapshots",
    "catalogue",
    "count_chunks",
    "freeze_events",
    "freeze_state",
    "frozen_objects",
    "manual_overrides",
    "processed_events",
    "schema_migrations",
    "snapshot_shapes",
    "work_counters",
]
VERSIONS = [1, 2, 3, 4, 5, 6]
"""The bundled migrations, written out: a file added or renumbered shows here."""


@pytest.fixture
async def connect(database_url: str, schema_name: str) -> AsyncIterator[Any]:
    """Opens connections whose search_path is the test's schema; drops it after."""
    opened: list[Any] = []

    async def open_connection() -> Any:
        connection = await asyncpg.connect(
            database_url, server_settings={"search_path": schema_name}
        )
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        await connection.close()
    await drop_schema(database_url, schema_name)


async def tables_of(connection: Any, schema: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema
    )
    return [row["tablename"] for row in rows]


async def test_migrating_an_empty_schema_creates_every_table(
    connect: Any, schema_name: str
) -> None:
    connection = await connect()

    applied = await migrate(connection, schema=schema_name)

    assert applied == VERSIONS
    assert await tables_of(connection, schema_name) == TABLES
    recorded = await connection.fetch(
        "SELECT version, name FROM schema_migrations ORDER BY version"
    )
    assert [tuple(row) for row in recorded] == [
        (m.version, m.name) for m in bundled_migrations()
    ]


async def test_migrating_again_applies_nothing(connect: Any, schema_name: str) -> None:
    connection = await connect()
    await migrate(connection, schema=schema_name)

    assert await migrate(connection, schema=schema_name) == []
    assert await connection.fetchval("SELECT count(*) FROM schema_migrations") == len(
        VERSIONS
    )


async def test_two_migrators_at_once_apply_each_file_once(
    connect: Any, schema_name: str
) -> None:
    first, second = await connect(), await connect()

    results = await asyncio.gather(
        migrate(first, schema=schema_name), migrate(second, schema=schema_name)
    )

    assert sorted(results) == [[], VERSIONS]
    assert await first.fetchval("SELECT count(*) FROM schema_migrations") == len(
        VERSIONS
    )


async def test_a_start_with_nothing_due_costs_one_query(
    connect: Any, schema_name: str
) -> None:
    connection = await connect()
    await migrate(connection, schema=schema_name)
    queries: list[str] = []
    connection.add_query_logger(lambda record: queries.append(record.query))

    await migrate(connection, schema=schema_name)
    await asyncio.sleep(0)  # asyncpg calls query loggers with call_soon

    assert queries == ["SELECT max(version) FROM schema_migrations"]


async def test_a_failing_migration_leaves_nothing_behind(
    connect: Any, schema_name: str
) -> None:
    connection = await connect()
    broken = [
        *bundled_migrations(),
        Migration(99, "broken", "CREATE TABLE half_done (id int); SELECT 1/0;"),
    ]

    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(connection, schema=schema_name, migrations=broken)

    # The whole run was one transaction: not even migration 1 or the schema stayed.
    assert await tables_of(connection, schema_name) == []


async def test_a_store_opens_migrated_and_reopens_without_migrating(
    database_url: str, schema_name: str
) -> None:
    try:
        async with await Store.open(database_url, schema=schema_name) as store:
            assert await store.migrate() == []
        async with await Store.open(database_url, schema=schema_name) as store:
            await store.ping()
    finally:
        await drop_schema(database_url, schema_name)


async def test_a_store_on_a_missing_database_fails_for_good(database_url: str) -> None:
    missing = database_url.rsplit("/", 1)[0] + "/no_such_database_here"

    with pytest.raises(StoreError) as raised:
        await Store.open(missing)

    assert type(raised.value) is StoreError
    assert isinstance(raised.value.__cause__, asyncpg.InvalidCatalogNameError)
