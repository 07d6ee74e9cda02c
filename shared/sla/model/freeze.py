"""The data of the freeze events, of ``slo.violated`` and of deployment events.

Outputs use the snapshot's conventions: snake_case fields, times in RFC 3339 UTC
with ``Z``, and a ``version`` field per model. Every event leaves the library as an
:class:`OutgoingEvent` whose id is deterministic, so the same fact produced twice
(a redelivery, a retry) carries the same id and a consumer sees it once.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from sla.model.base import UtcDatetime
from sla.model.snapshot import AlertState, OutputModel, Status

FREEZE_EVENT_VERSION: Final = 1

FREEZE_REQUESTED: Final = "dev.sla.freeze.requested"
FREEZE_LIFTED: Final = "dev.sla.freeze.lifted"
FREEZE_APPLIED: Final = "dev.sla.freeze.applied"
FREEZE_RELEASED: Final = "dev.sla.freeze.released"
FREEZE_FAILED: Final = "dev.sla.freeze.failed"
FREEZE_BREACHED: Final = "dev.sla.freeze.breached"
SLO_VIOLATED: Final = "dev.sla.slo.violated"

FreezeAction = Literal["freeze", "lift"]
Mode = Literal["annotate", "argocd", "flux"]
ObjectOutcomeName = Literal[
    "applied",  # the freeze holds on the object (or would, in a dry run)
    "released",  # this holder let go (the object is restored if it was the last)
    "exempt",  # carries sla.dev/freeze-exempt: left alone
    "skipped",  # never touched by rule (flux-system), with the reason
    "gone",  # deleted before it could be touched: nothing to do
    "failed",  # refused or impossible: verb and status, or the reason
]


class ScopeRef(OutputModel):
    """A policy's scope as a decision names it; ``key`` identifies it in the store.

    ``namespaces`` are those the policy asks for (its own namespace by default);
    the enforcer drops the others unless the cluster allows cross-namespace scopes.
    ``selector`` is in the API's ``labelSelector`` syntax ("" selects everything).
    """

    key: str
    namespaces: list[str]
    kinds: list[str]
    selector: str = ""


class FreezeDecisionData(OutputModel):
    """``dev.sla.freeze.requested`` and ``dev.sla.freeze.lifted``."""

    version: int = FREEZE_EVENT_VERSION
    policy: str
    scope: ScopeRef
    action: FreezeAction
    mode: Mode
    dry_run: bool = False
    reason: str
    reasons: list[str] = Field(default_factory=list)
    decision_seq: int
    decided_at: UtcDatetime


class ObjectOutcome(OutputModel):
    """What enforcement did to one object; ``verb`` and ``status`` say which call
    failed (status None when no HTTP status applies)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    outcome: ObjectOutcomeName
    verb: str | None = None
    status: int | None = None
    reason: str | None = None


class FreezeResultData(OutputModel):
    """``dev.sla.freeze.applied``, ``.released`` and ``.failed``."""

    version: int = FREEZE_EVENT_VERSION
    policy: str
    scope: str
    action: FreezeAction
    mode: Mode
    decision_seq: int
    decided_at: UtcDatetime
    dry_run: bool = False
    objects: list[ObjectOutcome] = Field(default_factory=list)
    reason: str | None = None


class SloViolatedData(OutputModel):
    """``dev.sla.slo.violated``: the SLO entered ``exhausted`` or a page row began
    to fire."""

    version: int = FREEZE_EVENT_VERSION
    slo: str
    evaluated_at: UtcDatetime
    status: Status
    firing: list[AlertState] = Field(default_factory=list)
    reason: str


class Deployment(BaseModel):
    """A deployment reported by a pipeline. Extra fields are ignored: pipelines
    add their own, and the contract is the fields below. ``labels``, when a
    pipeline sends them, let a freeze's label selector be checked."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    namespace: str
    kind: str
    name: str
    version: str
    actor: str
    time: UtcDatetime
    exemption: str | None = None
    labels: dict[str, str] | None = None

    @property
    def subject(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


class FreezeBreachedData(OutputModel):
    """``dev.sla.freeze.breached``: a deployment crossed a freeze."""

    version: int = FREEZE_EVENT_VERSION
    deployment: Deployment
    policy: str
    scope: str
    frozen_since: UtcDatetime
    reason: str


class OutgoingEvent(OutputModel):
    """An event for the handler to emit: CloudEvent ``type``, ``id``, ``subject``
    and ``data`` (JSON-ready)."""

    type: str
    id: str
    subject: str
    data: dict[str, Any]
