"""Manual overrides set through the API, and the audit log of every decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sla.clients.store.base import StoreBase, affected_rows, from_json, to_json
from sla.clients.store.records import AuditEntry, ManualOverride

# One override per policy: a new one replaces the old (the audit log keeps both).
_SET_OVERRIDE = """
INSERT INTO manual_overrides (policy, action, expires_at, reason, actor)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (policy) DO UPDATE SET
    action = EXCLUDED.action,
    expires_at = EXCLUDED.expires_at,
    reason = EXCLUDED.reason,
    actor = EXCLUDED.actor,
    created_at = now()
RETURNING *
"""

_ACTIVE_OVERRIDES = """
SELECT * FROM manual_overrides
WHERE expires_at > $1 AND ($2::text IS NULL OR policy = $2)
ORDER BY policy
"""

_APPEND_AUDIT = """
INSERT INTO audit_log (at, actor, kind, subject, inputs, outcome, reasons)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::text[])
RETURNING id
"""

_AUDIT = """
SELECT * FROM audit_log
WHERE ($1::text IS NULL OR subject = $1)
  AND ($2::text IS NULL OR kind = $2)
  AND ($3::timestamptz IS NULL OR at >= $3)
  AND ($4::timestamptz IS NULL OR at < $4)
ORDER BY at, id
LIMIT $5
"""


def _override(record: Any) -> ManualOverride:
    return ManualOverride(
        policy=record["policy"],
        action=record["action"],
        expires_at=record["expires_at"],
        reason=record["reason"],
        actor=record["actor"],
        created_at=record["created_at"],
    )


def _audit(record: Any) -> AuditEntry:
    return AuditEntry(
        id=record["id"],
        at=record["at"],
        actor=record["actor"],
        kind=record["kind"],
        subject=record["subject"],
        inputs=from_json(record["inputs"]),
        outcome=record["outcome"],
        reasons=tuple(record["reasons"]),
    )


class DecisionQueries(StoreBase):
    async def set_override(self, override: ManualOverride) -> ManualOverride:
        """Put an override in force for its policy, replacing any other."""
        async with self._connection() as connection:
            record = await connection.fetchrow(
                _SET_OVERRIDE,
                override.policy,
                override.action,
                override.expires_at,
                override.reason,
                override.actor,
            )
        return _override(record)

    async def clear_override(self, policy: str) -> bool:
        """Remove a policy's override; return whether there was one."""
        async with self._connection() as connection:
            status = await connection.execute(
                "DELETE FROM manual_overrides WHERE policy = $1", policy
            )
        return affected_rows(status) == 1

    async def active_overrides(
        self, *, now: datetime, policy: str | None = None
    ) -> list[ManualOverride]:
        """Overrides not expired at ``now``, of one policy or all."""
        async with self._connection() as connection:
            records = await connection.fetch(_ACTIVE_OVERRIDES, now, policy)
        return [_override(record) for record in records]

    async def append_audit(self, entry: AuditEntry) -> int:
        """Add a decision to the audit log; return its id."""
        async with self._connection() as connection:
            entry_id = await connection.fetchval(
                _APPEND_AUDIT,
                entry.at,
                entry.actor,
                entry.kind,
                entry.subject,
                to_json(entry.inputs),
                entry.outcome,
                list(entry.reasons),
            )
        return int(entry_id)

    async def audit_log(
        self,
        *,
        subject: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries, oldest first, filtered by subject, kind and time."""
        async with self._connection() as connection:
            records = await connection.fetch(_AUDIT, subject, kind, since, until, limit)
        return [_audit(record) for record in records]
