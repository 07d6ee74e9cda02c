"""Requests and responses of budget-api: the models its OpenAPI document is made of.

Outputs keep the snapshot's conventions (DESIGN.md, "Units and formats"): fields in
snake_case, ratios and burn rates as fractions, the objective in percent, times in
RFC 3339 UTC with ``Z``. Query models describe the query string of each read; their
field aliases are the parameter names.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sla.model.base import UtcDatetime
from sla.model.snapshot import BudgetSnapshot, OutputModel, Status

MAX_PAGE: Final = 500
"""The longest page of SLOs: a status page of 500 rows is still legible and the
answer stays well under a megabyte."""

MAX_AUDIT: Final = 1000

MAX_OVERRIDE_DAYS: Final = 90
"""How far after the request an override may expire: a quarter (OpenSLO's ``Q``).
An override is a hand-set stand-in for the policy during an incident or a
migration; one that runs for years has silently replaced the policy. A longer need
is met by setting it again, which is audited again."""

NO_NUL: Final = r"^[^\x00]*$"
"""PostgreSQL text cannot hold a NUL character; refusing it is a 4xx, not a 500."""

Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=NO_NUL)
]
Reason = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=1000, pattern=NO_NUL
    ),
]
Actor = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=NO_NUL
    ),
]


class ApiError(OutputModel):
    """Every error answer: what is wrong, and the parameter or field at fault."""

    error: str
    field: str | None = None


class QueryModel(BaseModel):
    """A query string; unknown parameters are refused so a typo is not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SloQuery(QueryModel):
    namespace: Text | None = None
    service: Text | None = None
    label: list[Annotated[str, StringConstraints(pattern=r"^[^=]+=.*$")]] = Field(
        default_factory=list,
        description="key=value, repeatable; every one must match",
    )
    status: Status | None = None
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(
        default=None, description="next_cursor of the previous page"
    )


class HistoryQuery(QueryModel):
    start: str | None = Field(
        default=None,
        alias="from",
        description="RFC 3339 or Unix seconds; default: 24 hours before `to`",
    )
    end: str | None = Field(
        default=None, alias="to", description="RFC 3339 or Unix seconds; default: now"
    )
    step: str | None = Field(
        default=None,
        description="a duration (5m, 1h) or seconds: the last snapshot of each step",
    )


class FreezeQuery(QueryModel):
    namespace: Text | None = None
    since: str | None = Field(
        default=None,
        description="RFC 3339 or Unix seconds: freezes lifted since; default 7 days",
    )


class AuditQuery(QueryModel):
    subject: Text | None = None
    kind: Text | None = None
    since: str | None = Field(default=None, description="RFC 3339 or Unix seconds")
    until: str | None = Field(default=None, description="RFC 3339 or Unix seconds")
    limit: int = Field(default=100, ge=1, le=MAX_AUDIT)


class SloSummary(OutputModel):
    """One SLO in a list: its identity and its latest budget figures."""

    slo: str
    namespace: str
    name: str
    service: str | None
    labels: dict[str, str]
    objective: float | None
    window: str | None
    status: Status
    remaining: float | None
    consumed: float | None
    sli: float | None
    burn_rates: dict[str, float | None]
    evaluated_at: UtcDatetime | None
    validation_error: str | None = None


class SloPage(OutputModel):
    items: list[SloSummary]
    total: int = Field(description="SLOs matching the filters, on every page")
    next_cursor: str | None


class SloDetail(OutputModel):
    slo: str
    namespace: str
    name: str
    labels: dict[str, str]
    definition: dict[str, Any] = Field(description="the SLODefinition's spec")
    validation_error: str | None
    budget: BudgetSnapshot | None


class HistoryPoint(OutputModel):
    evaluated_at: UtcDatetime
    status: Status
    remaining: float | None
    consumed: float | None
    sli: float | None
    burn_rates: dict[str, float | None]


class History(OutputModel):
    model_config = ConfigDict(populate_by_name=True)

    slo: str
    start: UtcDatetime = Field(alias="from")
    end: UtcDatetime = Field(alias="to")
    step: str | None
    points: list[HistoryPoint]
    truncated: bool = Field(description="more snapshots than one answer carries")


class FreezeView(OutputModel):
    policy: str
    namespace: str
    scope: str
    state: Literal["frozen", "lifted"]
    since: UtcDatetime | None = Field(description="when the freeze began")
    decided_at: UtcDatetime
    decision_seq: int
    reason: str
    mode: str | None
    dry_run: bool


class OverrideView(OutputModel):
    policy: str
    action: Literal["force", "lift"]
    expires_at: UtcDatetime
    reason: str
    actor: str
    created_at: UtcDatetime | None


class Freezes(OutputModel):
    active: list[FreezeView]
    recent: list[FreezeView] = Field(description="lifted since `since`")
    overrides: list[OverrideView] = Field(description="manual overrides in force")


class AuditView(OutputModel):
    id: int | None
    at: UtcDatetime
    actor: str
    kind: str
    subject: str
    outcome: str
    inputs: dict[str, Any]
    reasons: list[str]


class AuditPage(OutputModel):
    entries: list[AuditView] = Field(description="oldest first")


class OverrideRequest(BaseModel):
    """Force a freeze on, or lift it, until ``expires_at``; every field required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["force", "lift"]
    expires_at: UtcDatetime = Field(
        description=f"RFC 3339, in the future, at most {MAX_OVERRIDE_DAYS} days ahead"
    )
    reason: Reason
    actor: Actor


class OverrideClearRequest(BaseModel):
    """Remove an override before it expires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: Reason
    actor: Actor


class EventRef(OutputModel):
    type: str
    id: str


class OverrideResult(OutputModel):
    policy: str
    override: OverrideView | None
    state: Literal["frozen", "lifted"] | None = Field(
        description="the freeze state after deciding again (null: never decided)"
    )
    events: list[EventRef]
    events_posted: bool = Field(description="false when K_SINK is not set")
