"""Count chunks for incremental accounting.

A chunk is written when it has closed and settled, and once more, ``revisited``,
after a longer delay to take in late samples. A write of a chunk already stored
changes it only when the new write is the revisit and the stored one is not: a
redelivered first read changes nothing, and the revisit happens once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sla.clients.store.base import StoreBase, affected_rows
from sla.clients.store.records import CountChunk
from sla.errors import StoreError

logger = logging.getLogger(__name__)

CHUNK_COLUMNS: Final = (
    "indicator_key",
    "datasource",
    "chunk_seconds",
    "chunk_start",
    "good",
    "total",
    "slice_good",
    "slice_total",
    "absent",
    "read_at",
    "revisited",
)

BULK_CHUNKS: Final = 10_000
"""A write of this many chunks (a new history, a backfill after downtime) is
followed by a vacuum of the table."""

# Freshly written pages are not yet marked all-visible, so the next tick's
# inventory and sums would read each new chunk from the table instead of the index
# until autovacuum comes by, a minute or more later; the planner also learns the
# table's new size at once. SKIP_LOCKED: another writer's vacuum is as good.
_SETTLE = "VACUUM (ANALYZE, SKIP_LOCKED) count_chunks"

_STAGE_CHUNKS = """
CREATE TEMPORARY TABLE stage_chunks
    (LIKE count_chunks INCLUDING DEFAULTS) ON COMMIT DROP
"""

_UPSERT_STAGED = """
INSERT INTO count_chunks SELECT * FROM stage_chunks
ON CONFLICT (indicator_key, datasource, chunk_seconds, chunk_start) DO UPDATE SET
    good = EXCLUDED.good,
    total = EXCLUDED.total,
    slice_good = EXCLUDED.slice_good,
    slice_total = EXCLUDED.slice_total,
    absent = EXCLUDED.absent,
    read_at = EXCLUDED.read_at,
    revisited = true
WHERE EXCLUDED.revisited AND NOT count_chunks.revisited
"""

_SELECT = """
SELECT * FROM count_chunks
WHERE indicator_key = $1 AND datasource = $2 AND chunk_seconds = $3
  AND chunk_start >= $4 AND chunk_start < $5
ORDER BY chunk_start
"""


# Per history: how many chunks lie in the range, and which of them still wait for
# their second read. One query for every SLO of an evaluation; each history is
# aggregated on its own as its index range is read (a join grouped afterwards
# sorted every chunk row of every SLO, on disk at 1,000 SLOs).
_INVENTORY = """
SELECT wanted.indicator_key, wanted.datasource, held.stored, held.newest,
       held.unrevisited
FROM unnest($1::text[], $2::text[], $4::timestamptz[], $6::timestamptz[])
    AS wanted (indicator_key, datasource, span_start, span_end)
CROSS JOIN LATERAL (
    SELECT count(*) AS stored,
           max(chunk.chunk_start) AS newest,
           coalesce(
               array_agg(chunk.chunk_start ORDER BY chunk.chunk_start)
                   FILTER (WHERE NOT chunk.revisited AND chunk.chunk_start <= $5),
               '{}'
           ) AS unrevisited
    FROM count_chunks AS chunk
    WHERE chunk.indicator_key = wanted.indicator_key
      AND chunk.datasource = wanted.datasource
      AND chunk.chunk_seconds = $3
      AND chunk.chunk_start >= wanted.span_start
      AND chunk.chunk_start < wanted.span_end
) AS held
"""

# Good and total summed over each requested span, in the database: a 30-day window
# is ~720 rows an SLO, which need not cross the wire every minute. Each span is
# summed on its own, as above.
_SUMS = """
SELECT span.tag, summed.good, summed.total, summed.present
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
    AS span (tag, indicator_key, datasource, span_start, span_end)
CROSS JOIN LATERAL (
    SELECT coalesce(sum(chunk.good) FILTER (WHERE NOT chunk.absent), 0) AS good,
           coalesce(sum(chunk.total) FILTER (WHERE NOT chunk.absent), 0) AS total,
           count(*) FILTER (WHERE NOT chunk.absent) AS present
    FROM count_chunks AS chunk
    WHERE chunk.indicator_key = span.indicator_key
      AND chunk.datasource = span.datasource
      AND chunk.chunk_seconds = $6
      AND chunk.chunk_start >= span.span_start
      AND chunk.chunk_start < span.span_end
) AS summed
"""


@dataclass(frozen=True)
class ChunkInventory:
    """What is stored of one history in a range: the count, the newest chunk, and
    the chunks whose delayed second read is still to come (``unrevisited``, oldest
    first)."""

    stored: int
    unrevisited: tuple[datetime, ...]
    newest: datetime | None = None


@dataclass(frozen=True)
class ChunkSpan:
    """A range of chunk starts ``[start, end)`` of one history, named by ``tag``."""

    tag: str
    indicator_key: str
    datasource: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ChunkSum:
    good: float
    total: float
    present: int
    """Chunks with series in the span; 0 means the span is absent."""


def _row(chunk: CountChunk) -> tuple[object, ...]:
    return (
        chunk.indicator_key,
        chunk.datasource,
        chunk.chunk_seconds,
        chunk.chunk_start,
        chunk.good,
        chunk.total,
        None if chunk.slice_good is None else list(chunk.slice_good),
        None if chunk.slice_total is None else list(chunk.slice_total),
        chunk.absent,
        chunk.read_at,
        chunk.revisited,
    )


def _chunk(record: Any) -> CountChunk:
    slice_good, slice_total = record["slice_good"], record["slice_total"]
    return CountChunk(
        indicator_key=record["indicator_key"],
        datasource=record["datasource"],
        chunk_start=record["chunk_start"],
        chunk_seconds=record["chunk_seconds"],
        good=record["good"],
        total=record["total"],
        read_at=record["read_at"],
        slice_good=None if slice_good is None else tuple(slice_good),
        slice_total=None if slice_total is None else tuple(slice_total),
        absent=record["absent"],
        revisited=record["revisited"],
    )


def _one_per_key(chunks: Iterable[CountChunk]) -> list[CountChunk]:
    # One INSERT … ON CONFLICT DO UPDATE may not touch a row twice, so a batch
    # naming a chunk twice keeps one write: the revisit if there is one, else the
    # last.
    kept: dict[tuple[str, str, int, datetime], CountChunk] = {}
    for chunk in chunks:
        earlier = kept.get(chunk.key)
        if earlier is None or chunk.revisited or not earlier.revisited:
            kept[chunk.key] = chunk
    return list(kept.values())


class ChunkQueries(StoreBase):
    async def put_chunks(self, chunks: Iterable[CountChunk]) -> int:
        """Write a batch of chunks in one transaction; return the rows changed."""
        rows = [_row(chunk) for chunk in _one_per_key(chunks)]
        if not rows:
            return 0
        async with self._transaction() as connection:
            await connection.execute(_STAGE_CHUNKS)
            await connection.copy_records_to_table(
                "stage_chunks", records=rows, columns=CHUNK_COLUMNS
            )
            status = await connection.execute(_UPSERT_STAGED)
            await connection.execute("DROP TABLE stage_chunks")
        written = affected_rows(status)
        if written >= BULK_CHUNKS and self._bound is None:
            await self._settle()
        return written

    async def _settle(self) -> None:
        try:
            async with self._connection() as connection:
                await connection.execute(_SETTLE)
        except StoreError as error:
            # The chunks are stored; only the next ticks' reads are slower.
            logger.warning(
                "could not vacuum count_chunks after a bulk write: %s", error
            )

    async def get_chunks(
        self,
        indicator_key: str,
        datasource: str,
        chunk_seconds: int,
        *,
        start: datetime,
        end: datetime,
    ) -> list[CountChunk]:
        """Chunks starting at or after ``start`` and before ``end``, oldest first."""
        async with self._connection() as connection:
            records = await connection.fetch(
                _SELECT, indicator_key, datasource, chunk_seconds, start, end
            )
        return [_chunk(record) for record in records]

    async def chunk_inventory(
        self,
        spans: Sequence[ChunkSpan],
        chunk_seconds: int,
        *,
        closed_before: datetime,
    ) -> dict[tuple[str, str], ChunkInventory]:
        """Per history ``(indicator_key, datasource)``, one span each: the chunks
        stored in it, and those not yet revisited that started at or before
        ``closed_before``."""
        if not spans:
            return {}
        async with self._connection() as connection:
            records = await connection.fetch(
                _INVENTORY,
                [span.indicator_key for span in spans],
                [span.datasource for span in spans],
                chunk_seconds,
                [span.start for span in spans],
                closed_before,
                [span.end for span in spans],
            )
        return {
            (r["indicator_key"], r["datasource"]): ChunkInventory(
                stored=r["stored"],
                unrevisited=tuple(r["unrevisited"]),
                newest=r["newest"],
            )
            for r in records
        }

    async def chunk_sums(
        self, spans: Sequence[ChunkSpan], chunk_seconds: int
    ) -> dict[str, ChunkSum]:
        """Good and total of the chunks in each span, summed in one query."""
        if not spans:
            return {}
        async with self._connection() as connection:
            records = await connection.fetch(
                _SUMS,
                [span.tag for span in spans],
                [span.indicator_key for span in spans],
                [span.datasource for span in spans],
                [span.start for span in spans],
                [span.end for span in spans],
                chunk_seconds,
            )
        return {
            r["tag"]: ChunkSum(good=r["good"], total=r["total"], present=r["present"])
            for r in records
        }

    async def purge_chunks(self, indicator_keys: Sequence[str] | None = None) -> int:
        """Drop the chunk history of these indicators, or of all; return the rows."""
        async with self._connection() as connection:
            if indicator_keys is None:
                status = await connection.execute("DELETE FROM count_chunks")
            else:
                status = await connection.execute(
                    "DELETE FROM count_chunks WHERE indicator_key = ANY($1::text[])",
                    list(indicator_keys),
                )
        return affected_rows(status)

    async def delete_chunks_before(self, cutoff: datetime) -> int:
        """Drop chunks that start before ``cutoff``; return how many."""
        async with self._connection() as connection:
            status = await connection.execute(
                "DELETE FROM count_chunks WHERE chunk_start < $1", cutoff
            )
        return affected_rows(status)
