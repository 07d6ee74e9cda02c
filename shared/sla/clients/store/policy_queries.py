"""Queries of the policy evaluator and the freeze-enforcer: the last decision
enforced per scope, recorded events by id, the snapshot before one, and the lock
that keeps one enforcement per scope at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final

from sla.clients.store.base import StoreBase, from_json
from sla.clients.store.records import FreezeEvent
from sla.clients.store.snapshot_rows import SNAPSHOT_ROW, snapshot_from_row
from sla.model.snapshot import BudgetSnapshot

ENFORCED_TYPES: Final = (
    "dev.sla.freeze.applied",
    "dev.sla.freeze.released",
    "dev.sla.freeze.failed",
)
"""Event types that mark a decision as enforced (fully, or refused for good)."""

_LAST_ENFORCED = """
SELECT max((data->>'decision_seq')::bigint) FROM freeze_events
WHERE policy = $1 AND scope = $2 AND type = ANY($3::text[])
"""

_EVENTS_BY_ID = "SELECT * FROM freeze_events WHERE id = ANY($1::text[]) ORDER BY id"

_PREVIOUS_SNAPSHOT = f"""
SELECT {SNAPSHOT_ROW}
FROM budget_snapshots AS stored
LEFT JOIN snapshot_shapes USING (shape)
WHERE slo = $1 AND evaluated_at < $2
ORDER BY evaluated_at DESC
LIMIT 1
"""

# One enforcement per policy and scope at a time: the lock lives as long as the
# transaction of the connection that took it, and dies with it on a crash.
_LOCK_SCOPE = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


class PolicyQueries(StoreBase):
    async def last_enforced_sequence(self, policy: str, scope: str) -> int | None:
        """The newest decision sequence enforced for a policy and scope."""
        async with self._connection() as connection:
            value = await connection.fetchval(
                _LAST_ENFORCED, policy, scope, list(ENFORCED_TYPES)
            )
        return None if value is None else int(value)

    async def freeze_events_by_id(self, ids: Sequence[str]) -> list[FreezeEvent]:
        """Recorded freeze events with these ids, by id."""
        async with self._connection() as connection:
            records = await connection.fetch(_EVENTS_BY_ID, list(ids))
        return [
            FreezeEvent(
                id=r["id"],
                type=r["type"],
                policy=r["policy"],
                scope=r["scope"],
                occurred_at=r["occurred_at"],
                data=from_json(r["data"]),
            )
            for r in records
        ]

    async def previous_snapshot(
        self, slo: str, before: datetime
    ) -> BudgetSnapshot | None:
        """The SLO's newest snapshot evaluated before ``before``."""
        async with self._connection() as connection:
            record = await connection.fetchrow(_PREVIOUS_SNAPSHOT, slo, before)
        return None if record is None else snapshot_from_row(record)

    @asynccontextmanager
    async def scope_lock(self, policy: str, scope: str) -> AsyncIterator[None]:
        """Hold the enforcement lock of a policy and scope for the block."""
        async with self._transaction() as connection:
            await connection.execute(_LOCK_SCOPE, f"{policy}#{scope}")
            yield
