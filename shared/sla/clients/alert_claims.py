"""Processed-event ids of the alerts webhook-intake passed on, claimed in batches.

The rows live in ``processed_events`` beside the runtime's own, under a ``source``
of their own (``webhook-intake dev.sla.alert.received``), so the store's retention
(``Store.apply_retention``, by ``SLA_SNAPSHOT_RETENTION_DAYS``) drops them with the
rest. The runtime's ``claim_event`` takes one id per round trip; a notification
carries up to thousands of alerts, so here one statement claims them all and, in
the same round trip, says which of the rest were processed already: a notification
costs two statements, this claim and the record once its events were posted.

A row is one of three things: claimed (``processed_at`` null, held until
``claimed_until``), processed, or absent. A row processed longer ago than the
retention counts as absent even before the retention job deletes it, so the
window within which a resend is dropped is exactly the retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sla.clients.store import Store
from sla.clients.store.base import StoreBase
from sla.clients.store.store import pool_of

# Claims what is absent, expired or older than the retention and returns those ids
# (claimed true), then the ids processed within the retention (claimed false). The
# second half reads the snapshot the statement started with, not the INSERT's
# changes: a row it shows processed within the retention is one the INSERT leaves
# alone, and one processed before the retention, which the INSERT claims, it leaves
# out by the same bound, so no id comes back twice. It is skipped whole when every
# id was claimed (a new notification), and looks each id up by the primary key: a
# plan cached while the table was small (``id = ANY`` read as a filter over all of
# the source's rows) would otherwise cost milliseconds once it has grown.
_CLAIM = """
WITH claimed AS (
    INSERT INTO processed_events AS stored (source, id, claimed_until)
    SELECT $1, asked.id, now() + make_interval(secs => $3)
    FROM unnest($2::text[]) AS asked(id)
    ON CONFLICT (source, id) DO UPDATE SET
        claimed_until = EXCLUDED.claimed_until,
        processed_at = NULL,
        reply = NULL,
        outgoing = '[]'
    WHERE (stored.processed_at IS NULL AND stored.claimed_until < now())
       OR stored.processed_at < now() - make_interval(days => $4)
    RETURNING id
)
SELECT id, true AS claimed FROM claimed
UNION ALL
SELECT asked.id, false
FROM unnest($2::text[]) AS asked(id)
WHERE (SELECT count(*) FROM claimed) < cardinality($2::text[])
  AND (SELECT done.processed_at FROM processed_events AS done
       WHERE done.source = $1 AND done.id = asked.id)
      >= now() - make_interval(days => $4)
"""

_RECORD = """
UPDATE processed_events SET processed_at = now(), claimed_until = NULL
WHERE source = $1 AND id = ANY($2::text[]) AND processed_at IS NULL
"""

_RELEASE = """
DELETE FROM processed_events
WHERE source = $1 AND id = ANY($2::text[]) AND processed_at IS NULL
"""


@dataclass(frozen=True)
class ClaimedBatch:
    """Which of the ids asked for are now this caller's, done, or someone else's."""

    claimed: frozenset[str]
    processed: frozenset[str]
    busy: frozenset[str]


class AlertClaims(StoreBase):
    """Batch claims on ``processed_events`` under one ``source``."""

    def __init__(self, store: Store, *, source: str, retention_days: int) -> None:
        super().__init__(pool_of(store), schema=store.schema)
        self.source = source
        self.retention_days = retention_days

    async def claim(self, ids: Sequence[str], *, lease_seconds: float) -> ClaimedBatch:
        """Claim every id not processed within the retention nor held by a live
        claim; ``ids`` must be distinct (one statement cannot touch a row twice)."""
        if not ids:
            return ClaimedBatch(frozenset(), frozenset(), frozenset())
        async with self._connection() as connection:
            rows = await connection.fetch(
                _CLAIM, self.source, list(ids), lease_seconds, self.retention_days
            )
        claimed = frozenset(row["id"] for row in rows if row["claimed"])
        processed = frozenset(row["id"] for row in rows if not row["claimed"])
        # What is neither claimed nor processed is held by a live claim, or was
        # recorded or released by another request while the statement ran:
        # either way, worth asking again later.
        busy = frozenset(ids) - claimed - processed
        return ClaimedBatch(claimed, processed, busy)

    async def record(self, ids: Sequence[str]) -> None:
        """Mark claimed ids processed: their events were accepted downstream."""
        if ids:
            async with self._connection() as connection:
                await connection.execute(_RECORD, self.source, list(ids))

    async def release(self, ids: Sequence[str]) -> None:
        """Give claims back after a failure, so the retry need not wait them out."""
        if ids:
            async with self._connection() as connection:
                await connection.execute(_RELEASE, self.source, list(ids))
