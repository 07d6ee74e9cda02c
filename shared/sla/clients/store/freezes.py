"""Freeze state per policy and scope, the frozen objects, and the freeze events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sla.clients.store.base import StoreBase, affected_rows, from_json, to_json
from sla.clients.store.records import (
    FreezeEvent,
    FreezeState,
    FreezeStateName,
    FrozenObject,
    ObjectRef,
)

# Decisions arrive in any order; one older than the stored one is ignored.
_APPLY_DECISION = """
INSERT INTO freeze_state AS stored
    (policy, scope, state, decision_seq, decided_at, reason, details)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (policy, scope) DO UPDATE SET
    state = EXCLUDED.state,
    decision_seq = EXCLUDED.decision_seq,
    decided_at = EXCLUDED.decided_at,
    reason = EXCLUDED.reason,
    details = EXCLUDED.details,
    updated_at = now()
WHERE EXCLUDED.decision_seq > stored.decision_seq
"""

_FREEZE_STATES = """
SELECT * FROM freeze_state
WHERE ($1::text IS NULL OR policy = $1) AND ($2::text IS NULL OR state = $2)
ORDER BY policy, scope
"""

_OBJECT_KEY = "api_group = $1 AND kind = $2 AND namespace = $3 AND name = $4"

# The prior state is written by the first holder only; later holders join the set.
_HOLD = """
INSERT INTO frozen_objects AS stored
    (api_group, kind, namespace, name, holders, prior_state, frozen_since)
VALUES ($1, $2, $3, $4, ARRAY[$5::text], $6::jsonb, $7)
ON CONFLICT (api_group, kind, namespace, name) DO UPDATE SET
    holders = CASE WHEN $5::text = ANY(stored.holders) THEN stored.holders
                   ELSE stored.holders || $5::text END,
    updated_at = now()
RETURNING *
"""

_RELEASE = f"""
UPDATE frozen_objects SET holders = array_remove(holders, $5::text), updated_at = now()
WHERE {_OBJECT_KEY} AND $5::text = ANY(holders)
RETURNING *
"""

_FROZEN_OBJECTS = """
SELECT * FROM frozen_objects
WHERE $1::text IS NULL OR holders @> ARRAY[$1::text]
ORDER BY api_group, kind, namespace, name
"""

_RECORD_EVENT = """
INSERT INTO freeze_events (id, type, policy, scope, occurred_at, data)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)
ON CONFLICT (id) DO NOTHING
"""

_FREEZE_EVENTS = """
SELECT * FROM freeze_events
WHERE ($1::text IS NULL OR policy = $1)
  AND ($2::timestamptz IS NULL OR occurred_at >= $2)
ORDER BY occurred_at, id
LIMIT $3
"""


def _state(record: Any) -> FreezeState:
    return FreezeState(
        policy=record["policy"],
        scope=record["scope"],
        state=record["state"],
        decision_seq=record["decision_seq"],
        decided_at=record["decided_at"],
        reason=record["reason"],
        details=from_json(record["details"]),
    )


def _frozen(record: Any) -> FrozenObject:
    ref = ObjectRef(
        record["api_group"], record["kind"], record["namespace"], record["name"]
    )
    return FrozenObject(
        ref=ref,
        holders=tuple(record["holders"]),
        prior_state=from_json(record["prior_state"]),
        frozen_since=record["frozen_since"],
    )


def _event(record: Any) -> FreezeEvent:
    return FreezeEvent(
        id=record["id"],
        type=record["type"],
        policy=record["policy"],
        scope=record["scope"],
        occurred_at=record["occurred_at"],
        data=from_json(record["data"]),
    )


def _ref_args(ref: ObjectRef) -> tuple[str, str, str, str]:
    return (ref.api_group, ref.kind, ref.namespace, ref.name)


class FreezeQueries(StoreBase):
    async def apply_freeze_decision(self, decision: FreezeState) -> bool:
        """Make ``decision`` current unless a later one is stored; return whether
        it was applied."""
        async with self._connection() as connection:
            status = await connection.execute(
                _APPLY_DECISION,
                decision.policy,
                decision.scope,
                decision.state,
                decision.decision_seq,
                decision.decided_at,
                decision.reason,
                to_json(decision.details),
            )
        return affected_rows(status) == 1

    async def freeze_state(self, policy: str, scope: str) -> FreezeState | None:
        async with self._connection() as connection:
            record = await connection.fetchrow(
                "SELECT * FROM freeze_state WHERE policy = $1 AND scope = $2",
                policy,
                scope,
            )
        return None if record is None else _state(record)

    async def freeze_states(
        self, *, policy: str | None = None, state: FreezeStateName | None = None
    ) -> list[FreezeState]:
        async with self._connection() as connection:
            records = await connection.fetch(_FREEZE_STATES, policy, state)
        return [_state(record) for record in records]

    async def hold_object(
        self,
        ref: ObjectRef,
        *,
        holder: str,
        prior_state: dict[str, Any],
        at: datetime,
    ) -> FrozenObject:
        """Add ``holder`` to the object's freezes; the prior state and the time are
        kept from the first holder. Holding twice changes nothing."""
        async with self._connection() as connection:
            record = await connection.fetchrow(
                _HOLD, *_ref_args(ref), holder, to_json(prior_state), at
            )
        return _frozen(record)

    async def release_object(
        self, ref: ObjectRef, *, holder: str
    ) -> FrozenObject | None:
        """Remove ``holder``; return the object with the holders left.

        With no holder left the row is gone and the returned ``prior_state`` is the
        state to restore. None: ``holder`` did not hold the object.
        """
        async with self._transaction() as connection:
            record = await connection.fetchrow(_RELEASE, *_ref_args(ref), holder)
            if record is None:
                return None
            if not record["holders"]:
                await connection.execute(
                    f"DELETE FROM frozen_objects WHERE {_OBJECT_KEY}", *_ref_args(ref)
                )
        return _frozen(record)

    async def frozen_object(self, ref: ObjectRef) -> FrozenObject | None:
        async with self._connection() as connection:
            record = await connection.fetchrow(
                f"SELECT * FROM frozen_objects WHERE {_OBJECT_KEY}", *_ref_args(ref)
            )
        return None if record is None else _frozen(record)

    async def frozen_objects(self, *, holder: str | None = None) -> list[FrozenObject]:
        """Every frozen object, or those ``holder`` holds."""
        async with self._connection() as connection:
            records = await connection.fetch(_FROZEN_OBJECTS, holder)
        return [_frozen(record) for record in records]

    async def record_freeze_event(self, event: FreezeEvent) -> bool:
        """Keep a published freeze event; return False when its id was stored."""
        async with self._connection() as connection:
            status = await connection.execute(
                _RECORD_EVENT,
                event.id,
                event.type,
                event.policy,
                event.scope,
                event.occurred_at,
                to_json(event.data),
            )
        return affected_rows(status) == 1

    async def freeze_events(
        self,
        *,
        policy: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[FreezeEvent]:
        """Freeze events, oldest first, of one policy or all."""
        async with self._connection() as connection:
            records = await connection.fetch(_FREEZE_EVENTS, policy, since, limit)
        return [_event(record) for record in records]
