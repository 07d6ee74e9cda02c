"""Numbered SQL migrations, applied when a store opens.

Migrations are the files ``NNNN_name.sql`` in ``sla/clients/migrations``, applied in
order, each recorded in ``schema_migrations``. A start with nothing due costs one
query: the highest applied version is compared with the highest file before any lock
is taken. When something is due, every pending file runs in one transaction under a
transaction-scoped advisory lock, so two processes starting at once apply each file
once, and a failing file leaves the schema as it was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import asyncpg

MIGRATIONS_PACKAGE: Final = "sla.clients"
MIGRATIONS_DIRECTORY: Final = "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

ADVISORY_LOCK_KEY: Final = 0x534C_415F_4D49_4752
"""``SLA_MIGR`` in ASCII: a fixed key no other user of the database is likely to use."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    """The migrations shipped with the library, in version order."""
    directory = resources.files(MIGRATIONS_PACKAGE) / MIGRATIONS_DIRECTORY
    found = []
    for entry in directory.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            version, name = int(match[1]), match[2]
            found.append(Migration(version, name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return found


def quote_identifier(name: str) -> str:
    """A schema or table name quoted for SQL."""
    return '"' + name.replace('"', '""') + '"'


async def applied_version(connection: Any) -> int:
    """The highest applied version; 0 for a database never migrated."""
    try:
        version = await connection.fetchval(
            "SELECT max(version) FROM schema_migrations"
        )
    except asyncpg.UndefinedTableError:
        return 0
    return int(version or 0)


async def migrate(
    connection: Any,
    *,
    schema: str | None = None,
    migrations: Sequence[Migration] | None = None,
) -> list[int]:
    """Apply what is due on ``connection``; return the versions applied here.

    ``connection``'s search_path must already name ``schema`` when one is given.
    """
    pending = list(bundled_migrations() if migrations is None else migrations)
    if not pending or await applied_version(connection) >= pending[-1].version:
        return []

    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
        if schema is not None:
            await connection.execute(
                f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}"
            )
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        # Read again under the lock: another process may have applied them meanwhile.
        done = {
            row["version"]
            for row in await connection.fetch("SELECT version FROM schema_migrations")
        }
        applied = []
        for migration in pending:
            if migration.version in done:
                continue
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration.version)
        return applied
