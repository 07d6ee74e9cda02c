"""Fixtures for tests that need PostgreSQL or Redis: real servers, isolated per test.

``tests/conftest.py`` registers this module as a plugin, so every test can ask for
them. Helpers live in ``tests.support.schemas``, ``tests.support.servers`` and
``tests.support.snapshots``.

- ``database_url``: the test database (``SLA_TEST_DATABASE_URL``, default the local
  server's ``test`` database).
- ``store``: a migrated :class:`~sla.clients.store.Store` in a schema of its own,
  dropped after the test.
- ``own_database_url``: a database of the test's own on the same server, dropped
  after the test, for commands that open the store themselves (``sla dev``,
  ``sla eval``).
- ``redis_url``: the local Redis on a logical database no application uses
  (``SLA_TEST_REDIS_URL``); tests keep to key prefixes of their own.
- ``redis_server``: a :class:`~tests.support.servers.RedisServer` of the test's own,
  on a free 127.0.0.1 port, for tests that stop it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Final

import asyncpg
import pytest

from sla.clients.store import Store
from tests.support.schemas import drop_schema, fresh_schema_name
from tests.support.servers import RedisServer

DEFAULT_TEST_DATABASE_URL: Final = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_TEST_REDIS_URL: Final = "redis://127.0.0.1:6379/13"
"""Logical database 13: not the default 0 an application would use by accident."""


@pytest.fixture(scope="session")
def database_url() -> str:
    return os.environ.get("SLA_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


@pytest.fixture
def schema_name() -> str:
    return fresh_schema_name()


@pytest.fixture
async def store(database_url: str, schema_name: str) -> AsyncIterator[Store]:
    """A migrated store in a fresh schema, dropped after the test."""
    opened = await Store.open(database_url, schema=schema_name, pool_size=4)
    try:
        yield opened
    finally:
        await opened.close()
        await drop_schema(database_url, schema_name)


@pytest.fixture
def own_database_url(database_url: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(database_url, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{database_url.rpartition('/')[0]}/{name}"
    finally:
        asyncio.run(_admin(database_url, f'DROP DATABASE IF EXISTS "{name}" (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("SLA_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started redis-server of the test's own, stopped after the test."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
