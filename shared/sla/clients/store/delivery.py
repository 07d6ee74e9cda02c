"""Processed CloudEvents: at-least-once delivery made idempotent.

A handler claims ``(source, id)`` before the work, and records the reply and its
outgoing events in the same transaction as the work's own writes. A redelivery then
finds the event processed and answers with the stored reply, posting the stored
outgoing events again with their original ids. A claim expires, so a worker that
died mid-way does not block the event for good.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sla.clients.store.base import StoreBase, affected_rows, from_json, to_json
from sla.clients.store.records import Claim, ProcessedEvent

DEFAULT_LEASE_SECONDS: Final = 60.0
"""Longer than a handler's work (Prometheus timeout 10 s, a few queries in a row),
shorter than the broker's retry backoff grows to."""

# Inserts a claim, or takes over an expired one; returns a row only when claimed.
_CLAIM = """
INSERT INTO processed_events AS stored (source, id, claimed_until)
VALUES ($1, $2, now() + make_interval(secs => $3))
ON CONFLICT (source, id) DO UPDATE SET claimed_until = EXCLUDED.claimed_until
WHERE stored.processed_at IS NULL AND stored.claimed_until < now()
RETURNING id
"""

# First answer wins: a second worker that raced past an expired claim gets the
# first one's reply back and gives it too.
_RECORD = """
INSERT INTO processed_events AS stored (source, id, processed_at, reply, outgoing)
VALUES ($1, $2, now(), $3::jsonb, $4::jsonb)
ON CONFLICT (source, id) DO UPDATE SET
    processed_at = EXCLUDED.processed_at,
    reply = EXCLUDED.reply,
    outgoing = EXCLUDED.outgoing,
    claimed_until = NULL
WHERE stored.processed_at IS NULL
"""

_SELECT = "SELECT * FROM processed_events WHERE source = $1 AND id = $2"


def _processed(record: Any) -> ProcessedEvent | None:
    if record is None or record["processed_at"] is None:
        return None
    return ProcessedEvent(
        source=record["source"],
        id=record["id"],
        reply=from_json(record["reply"]),
        outgoing=from_json(record["outgoing"]),
        processed_at=record["processed_at"],
    )


class DeliveryQueries(StoreBase):
    async def claim_event(
        self,
        source: str,
        event_id: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> Claim:
        """Claim an event for handling, or learn it is done or being handled."""
        async with self._connection() as connection:
            claimed = await connection.fetchval(_CLAIM, source, event_id, lease_seconds)
            if claimed is not None:
                return Claim("claimed")
            processed = _processed(await connection.fetchrow(_SELECT, source, event_id))
        return Claim("busy") if processed is None else Claim("processed", processed)

    async def lookup_event(self, source: str, event_id: str) -> ProcessedEvent | None:
        """The stored answer to an event handled before, else None."""
        async with self._connection() as connection:
            return _processed(await connection.fetchrow(_SELECT, source, event_id))

    async def record_event(
        self,
        source: str,
        event_id: str,
        *,
        reply: dict[str, Any] | None,
        outgoing: list[dict[str, Any]],
    ) -> ProcessedEvent:
        """Record the answer to an event; return the answer stored, which is an
        earlier one if the event was recorded before."""
        async with self._transaction() as connection:
            await connection.execute(
                _RECORD,
                source,
                event_id,
                None if reply is None else to_json(reply),
                to_json(outgoing),
            )
            stored = _processed(await connection.fetchrow(_SELECT, source, event_id))
        assert stored is not None, "recorded in this transaction"
        return stored

    async def release_claim(self, source: str, event_id: str) -> bool:
        """Give up a claim after a failure, so a retry need not wait for it."""
        async with self._connection() as connection:
            status = await connection.execute(
                "DELETE FROM processed_events"
                " WHERE source = $1 AND id = $2 AND processed_at IS NULL",
                source,
                event_id,
            )
        return affected_rows(status) == 1

    async def delete_processed_before(self, cutoff: datetime) -> int:
        """Forget events processed before ``cutoff``; return how many."""
        async with self._connection() as connection:
            status = await connection.execute(
                "DELETE FROM processed_events WHERE processed_at < $1", cutoff
            )
        return affected_rows(status)
