"""Budget snapshots: one row per SLO per evaluation time, the history of budgets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from sla.clients.store.base import StoreBase, affected_rows
from sla.clients.store.snapshot_rows import (
    SNAPSHOT_COLUMNS,
    SNAPSHOT_ROW,
    snapshot_from_row,
    snapshot_rows,
)
from sla.errors import StoreError
from sla.model.snapshot import BudgetSnapshot

_STAGE = """
CREATE TEMPORARY TABLE stage_snapshots
    (LIKE budget_snapshots INCLUDING DEFAULTS) ON COMMIT DROP
"""

_INSERT_STAGED = """
INSERT INTO budget_snapshots SELECT * FROM stage_snapshots
ON CONFLICT (slo, evaluated_at) DO NOTHING
"""

# Dropped at once, not only at commit, so a caller's transaction may store twice.
_DROP_STAGE = "DROP TABLE stage_snapshots"

# Shapes are few and mostly stored already; a batch offers the ones it names. The
# same round trip tells whether the batch's first row is stored already, as every
# row of an evaluation delivered again is.
_OFFER_SHAPES = """
WITH offered AS (
    INSERT INTO snapshot_shapes (shape, definition)
    SELECT * FROM unnest($1::bytea[], $2::text[])
    ON CONFLICT (shape) DO NOTHING
)
SELECT EXISTS (SELECT FROM budget_snapshots WHERE slo = $3 AND evaluated_at = $4)
"""

_LATEST = f"""
SELECT {SNAPSHOT_ROW}
FROM unnest($1::text[]) AS wanted (slo)
CROSS JOIN LATERAL (
    SELECT * FROM budget_snapshots
    WHERE budget_snapshots.slo = wanted.slo
    ORDER BY evaluated_at DESC
    LIMIT 1
) AS stored
LEFT JOIN snapshot_shapes USING (shape)
"""

_HISTORY = f"""
SELECT {SNAPSHOT_ROW}
FROM budget_snapshots AS stored
LEFT JOIN snapshot_shapes USING (shape)
WHERE slo = $1 AND evaluated_at >= $2 AND evaluated_at <= $3
ORDER BY evaluated_at
LIMIT $4
"""


def _first_per_key(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    first: dict[object, tuple[object, ...]] = {}
    for row in rows:
        first.setdefault(row[:2], row)
    return list(first.values())


async def _offer_shapes(
    connection: Any, shapes: dict[bytes, str], first: tuple[object, ...]
) -> bool:
    """Store the shapes not stored yet; return whether ``first`` is stored."""
    # In one order for every writer, so two batches storing the same new shapes
    # wait for each other rather than deadlock.
    ordered = sorted(shapes.items())
    stored: bool = await connection.fetchval(
        _OFFER_SHAPES,
        [shape for shape, _ in ordered],
        [definition for _, definition in ordered],
        first[0],
        first[1],
    )
    return stored


def _lost_race(error: StoreError) -> bool:
    return isinstance(error.__cause__, asyncpg.UniqueViolationError)


class SnapshotQueries(StoreBase):
    async def put_snapshots(self, snapshots: Iterable[BudgetSnapshot]) -> int:
        """Store a batch in one transaction; return how many were new.

        A snapshot already stored (same SLO, same evaluation time) is left as it
        is, so writing a batch again changes nothing. All of the batch is stored or
        none of it.
        """
        batch, shapes = snapshot_rows(snapshots)
        if not batch:
            return 0
        try:
            if await self._copy_new(batch, shapes):
                return len(batch)
        except StoreError as error:
            if not _lost_race(error):
                raise
        # Some of these were stored before (by a redelivery, or by another
        # writer), or the batch holds one twice: the first of each is the one
        # offered, the rest are repeats.
        return await self._insert_staged(_first_per_key(batch), shapes)

    async def _copy_new(
        self, batch: list[tuple[object, ...]], shapes: dict[bytes, str]
    ) -> bool:
        """Copy the batch straight into the table; False, having stored no
        snapshot, when its first row is there already."""
        # The fast path, for the common case of an evaluation stored once. A
        # repeat of any row violates the key, the transaction rolls back whole,
        # and the staged path stores only the new rows. Looking every row up
        # first cost a third of the time; the first alone costs nothing more.
        async with self._transaction() as connection:
            if await _offer_shapes(connection, shapes, batch[0]):
                return False
            await connection.copy_records_to_table(
                "budget_snapshots",
                records=batch,
                columns=SNAPSHOT_COLUMNS,
            )
        return True

    async def _insert_staged(
        self, batch: list[tuple[object, ...]], shapes: dict[bytes, str]
    ) -> int:
        async with self._transaction() as connection:
            await _offer_shapes(connection, shapes, batch[0])
            await connection.execute(_STAGE)
            await connection.copy_records_to_table(
                "stage_snapshots",
                records=batch,
                columns=SNAPSHOT_COLUMNS,
            )
            status = await connection.execute(_INSERT_STAGED)
            await connection.execute(_DROP_STAGE)
        return affected_rows(status)

    async def latest_snapshots(self, slos: Sequence[str]) -> dict[str, BudgetSnapshot]:
        """The newest snapshot of each SLO named; SLOs without one are left out."""
        if not slos:
            return {}
        async with self._connection() as connection:
            records = await connection.fetch(_LATEST, list(slos))
        snapshots = (snapshot_from_row(record) for record in records)
        return {snapshot.slo: snapshot for snapshot in snapshots}

    async def history(
        self,
        slo: str,
        *,
        start: datetime,
        end: datetime,
        limit: int | None = None,
    ) -> list[BudgetSnapshot]:
        """Snapshots of one SLO evaluated from ``start`` to ``end`` inclusive, oldest
        first; at most ``limit`` of them."""
        async with self._connection() as connection:
            records = await connection.fetch(_HISTORY, slo, start, end, limit)
        return [snapshot_from_row(record) for record in records]

    async def delete_snapshots_before(self, cutoff: datetime) -> int:
        """Drop snapshots evaluated before ``cutoff``; return how many."""
        async with self._connection() as connection:
            status = await connection.execute(
                "DELETE FROM budget_snapshots WHERE evaluated_at < $1", cutoff
            )
        return affected_rows(status)
