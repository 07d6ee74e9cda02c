"""PostgreSQL schemas of tests: each test's tables live in a schema of its own."""

from __future__ import annotations

import uuid

import asyncpg

from sla.clients.store.migrations import quote_identifier


def fresh_schema_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


async def drop_schema(url: str, schema: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            f"DROP SCHEMA IF EXISTS {quote_identifier(schema)} CASCADE"
        )
    finally:
        await connection.close()
