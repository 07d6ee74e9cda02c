"""Counts of recorded decisions, for the metrics budget-api serves at scrape time.

The audit log is append-only and outlives the snapshot retention, so counting its
rows gives counters that never go down, whichever function made the decision and
whether or not it is running now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sla.clients.store.base import StoreBase

COUNTED: Final = (
    ("slo-violation", "violated"),
    ("freeze-decision", "freeze"),
    ("freeze-decision", "lift"),
)
"""(kind, outcome) pairs of the audit log that metrics count."""

# TODO: keep these counts in a table the writers update, if one scan of the audit
# log per scrape grows slow — when the log holds tens of millions of rows.
_COUNT = """
SELECT kind, outcome, subject, count(*) AS total FROM audit_log
WHERE (kind, outcome) IN (SELECT * FROM unnest($1::text[], $2::text[]))
GROUP BY kind, outcome, subject
ORDER BY kind, outcome, subject
"""


@dataclass(frozen=True)
class DecisionCount:
    """How many audit entries of one kind and outcome name one subject."""

    kind: str
    outcome: str
    subject: str
    total: int


class StateQueries(StoreBase):
    async def decision_counts(self) -> list[DecisionCount]:
        """Violations per SLO, freezes and lifts per policy, since the log began."""
        kinds = [kind for kind, _ in COUNTED]
        outcomes = [outcome for _, outcome in COUNTED]
        async with self._connection() as connection:
            records = await connection.fetch(_COUNT, kinds, outcomes)
        return [
            DecisionCount(r["kind"], r["outcome"], r["subject"], int(r["total"]))
            for r in records
        ]
