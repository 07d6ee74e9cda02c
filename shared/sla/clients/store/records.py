"""Rows of the store as plain immutable values.

Budget snapshots travel as :class:`~sla.model.snapshot.BudgetSnapshot`; everything
else the store keeps is one of these. JSON columns are plain ``dict``/``list`` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

CatalogueKind = Literal["SLODefinition", "SLAPolicy"]
FreezeStateName = Literal["frozen", "lifted"]
OverrideAction = Literal["force", "lift"]
ClaimStatus = Literal["claimed", "processed", "busy"]


@dataclass(frozen=True)
class CatalogueEntry:
    """An SLODefinition or SLAPolicy as last seen, valid or not."""

    kind: CatalogueKind
    namespace: str
    name: str
    source: str
    generation: int
    document: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    validation_error: str | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class CountChunk:
    """Good and total events of one closed chunk of one indicator on one datasource.

    ``absent`` means Prometheus had no series at all (not zero traffic). The
    ``slice_*`` arrays hold per-timeslice counts for the timeslice budgeting methods.
    ``revisited`` marks the second, delayed read that catches late samples.
    """

    indicator_key: str
    datasource: str
    chunk_start: datetime
    chunk_seconds: int
    good: float
    total: float
    read_at: datetime
    slice_good: tuple[float, ...] | None = None
    slice_total: tuple[float, ...] | None = None
    absent: bool = False
    revisited: bool = False

    @property
    def key(self) -> tuple[str, str, int, datetime]:
        return (
            self.indicator_key,
            self.datasource,
            self.chunk_seconds,
            self.chunk_start,
        )


@dataclass(frozen=True)
class FreezeState:
    """The freeze decision in force for one policy and scope."""

    policy: str
    scope: str
    state: FreezeStateName
    decision_seq: int
    decided_at: datetime
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectRef:
    """A cluster object's identity; ``api_group`` is empty for the core group."""

    api_group: str
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class FrozenObject:
    """A frozen object, every freeze holding it, and its state before the first."""

    ref: ObjectRef
    holders: tuple[str, ...]
    prior_state: dict[str, Any]
    frozen_since: datetime


@dataclass(frozen=True)
class FreezeEvent:
    """A published freeze event; ``id`` is its CloudEvent id."""

    id: str
    type: str
    policy: str
    occurred_at: datetime
    data: dict[str, Any]
    scope: str = ""


@dataclass(frozen=True)
class ProcessedEvent:
    """A handled CloudEvent with the reply given and the events it posted."""

    source: str
    id: str
    reply: dict[str, Any] | None
    outgoing: list[dict[str, Any]]
    processed_at: datetime


@dataclass(frozen=True)
class Claim:
    """The answer to a claim on an event.

    ``claimed``: this caller handles it. ``processed``: it was handled before and
    ``processed`` holds the answer to give again. ``busy``: another worker holds an
    unexpired claim; answer with a retryable status.
    """

    status: ClaimStatus
    processed: ProcessedEvent | None = None


@dataclass(frozen=True)
class ManualOverride:
    """A freeze forced on or lifted by hand until ``expires_at``."""

    policy: str
    action: OverrideAction
    expires_at: datetime
    reason: str
    actor: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One decision, with what it was based on and why."""

    at: datetime
    actor: str
    kind: str
    subject: str
    outcome: str
    inputs: dict[str, Any] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    id: int | None = None


@dataclass(frozen=True)
class RetentionResult:
    """Rows deleted by one retention pass, per table."""

    snapshots: int
    chunks: int
    processed_events: int
