"""A budget snapshot: the figures of one SLO at one evaluation time.

Its fields are those of ``sla eval -o json`` and of ``dev.sla.budget.calculated``.
Ratios are fractions (0.9995), the objective is in percent as in the spec.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sla.model.base import UtcDatetime

SNAPSHOT_VERSION = 1

Status = Literal["no_data", "exhausted", "critical", "warning", "healthy"]
STATUSES: tuple[Status, ...] = (
    "no_data",
    "exhausted",
    "critical",
    "warning",
    "healthy",
)


class OutputModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventCounts(OutputModel):
    good: float
    bad: float
    total: float


class ErrorBudget(OutputModel):
    consumed: float | None
    remaining: float | None


class AlertState(OutputModel):
    severity: Literal["page", "ticket"]
    long_window: str
    short_window: str
    factor: float
    firing: bool
    long_burn_rate: float | None = None
    short_burn_rate: float | None = None


class BudgetSnapshot(OutputModel):
    version: int = SNAPSHOT_VERSION
    slo: str
    evaluated_at: UtcDatetime
    objective: float
    window: str
    budgeting_method: str = "Occurrences"
    status: Status
    sli: float | None
    events: EventCounts
    error_budget: ErrorBudget
    burn_rates: dict[str, float | None] = Field(default_factory=dict)
    alerts: list[AlertState] = Field(default_factory=list)
    exhaustion_eta: UtcDatetime | None = None
    window_start: UtcDatetime | None = None
    reason: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def snapshot_id(self) -> str:
        """Deterministic: the same SLO at the same instant always has the same id."""
        return snapshot_id(self.slo, self.evaluated_at)


def snapshot_id(slo: str, evaluated_at: datetime) -> str:
    stamp = evaluated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{slo}@{stamp}"
