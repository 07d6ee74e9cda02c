"""Work counters in the store, so they outlive the process that counted them.

A function adds to its counters in the transaction of the work it counts (one
statement, whatever the number of series), so a redelivered event that finds its
work done counts nothing twice. budget-api reads every row when it is scraped.

Counters only grow: an increment is a positive amount. A row is keyed by the metric
name and its label set; the label names are a fixed, bounded vocabulary
(:data:`LABEL_NAMES`), so no caller can turn a free-text value into a label name.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sla.clients.store.base import StoreBase

LABEL_NAMES: Final = frozenset(
    {"slo", "namespace", "window", "status", "outcome", "type", "le"}
)
"""Every label a stored counter may carry. ``le`` is a histogram bucket's bound."""

METRIC_NAME: Final = re.compile(r"^sla_[a-z0-9_]+$")

# Rows are summed per key first (ON CONFLICT DO UPDATE may touch a row only once
# per statement) and written in key order, so two transactions adding to the same
# counters lock them in the same order and cannot deadlock.
_ADD = """
INSERT INTO work_counters AS stored (metric, labels, value, updated_at)
SELECT metric, labels::jsonb, sum(amount), now()
FROM unnest($1::text[], $2::text[], $3::float8[]) AS added(metric, labels, amount)
GROUP BY metric, labels::jsonb
ORDER BY metric, labels::jsonb
ON CONFLICT (metric, labels) DO UPDATE SET
    value = stored.value + EXCLUDED.value,
    updated_at = EXCLUDED.updated_at
"""

_READ = "SELECT metric, labels, value, updated_at FROM work_counters ORDER BY 1, 2"


class CounterError(ValueError):
    """An increment the store refuses: a label or metric outside the vocabulary."""


@dataclass(frozen=True)
class Increment:
    """An amount to add to one counter series."""

    metric: str
    amount: float = 1.0
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not METRIC_NAME.fullmatch(self.metric):
            raise CounterError(f"metric name {self.metric!r} is not sla_[a-z0-9_]+")
        unknown = sorted(set(self.labels) - LABEL_NAMES)
        if unknown:
            raise CounterError(
                f"{self.metric}: labels {unknown} are not among {sorted(LABEL_NAMES)}"
            )
        if not math.isfinite(self.amount) or self.amount < 0:
            raise CounterError(
                f"{self.metric}: a counter only grows, not by {self.amount}"
            )

    def key(self) -> str:
        return json.dumps(dict(self.labels), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class CounterValue:
    """One stored series and its total so far."""

    metric: str
    labels: Mapping[str, str]
    value: float
    updated_at: datetime


class CounterQueries(StoreBase):
    async def add_to_counters(self, increments: Iterable[Increment]) -> None:
        """Add every increment in one statement; nothing to add costs nothing."""
        rows = [i for i in increments if i.amount > 0]
        if not rows:
            return
        async with self._connection() as connection:
            await connection.execute(
                _ADD,
                [i.metric for i in rows],
                [i.key() for i in rows],
                [float(i.amount) for i in rows],
            )

    async def read_counters(self) -> Sequence[CounterValue]:
        """Every stored series, by metric and labels."""
        async with self._connection() as connection:
            records = await connection.fetch(_READ)
        return [
            CounterValue(
                r["metric"], json.loads(r["labels"]), r["value"], r["updated_at"]
            )
            for r in records
        ]
