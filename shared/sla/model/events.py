"""The data of every CloudEvent in the design's event catalogue.

Each ``dev.sla.*`` event's ``data`` is one of the models here, with a ``version``
field that says which shape it has; a consumer refuses a version it does not know.
Events that come from outside the system keep their producer's shape: a PingSource's
data is empty, an ApiServerSource's is the resource itself, and a deployment is the
catalogue's ``{namespace, kind, name, version, actor, time, exemption}``, whose
``version`` is the release deployed, not a schema version.

``EVENT_DATA`` maps every event type to its model, so the runtime can validate any
incoming event and tests can check that nothing in the catalogue is left out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from sla.model.base import UtcDatetime
from sla.model.freeze import (
    FREEZE_APPLIED,
    FREEZE_BREACHED,
    FREEZE_FAILED,
    FREEZE_LIFTED,
    FREEZE_RELEASED,
    FREEZE_REQUESTED,
    SLO_VIOLATED,
    Deployment,
    FreezeBreachedData,
    FreezeDecisionData,
    FreezeResultData,
    SloViolatedData,
)
from sla.model.snapshot import BudgetSnapshot

EVENT_VERSION: Final = 1
"""The ``version`` every ``dev.sla.*`` event is written with today."""

PING: Final = "dev.knative.sources.ping"
SLO_EVALUATE: Final = "dev.sla.slo.evaluate"
ALERT_RECEIVED: Final = "dev.sla.alert.received"
BUDGET_CALCULATED: Final = "dev.sla.budget.calculated"
DEPLOYMENT_STARTED: Final = "dev.sla.deployment.started"
KAFKA_EVENT: Final = "dev.knative.kafka.event"
RESOURCE_ADD: Final = "dev.knative.apiserver.resource.add"
RESOURCE_UPDATE: Final = "dev.knative.apiserver.resource.update"
RESOURCE_DELETE: Final = "dev.knative.apiserver.resource.delete"

EVENT_REJECTED: Final = "dev.sla.event.rejected"
"""Not routed: the body of a 4xx or 5xx answer, so a dead-letter sink keeps why."""

SOURCE_PREFIX: Final = "/sla/"


def function_source(function: str) -> str:
    """The ``source`` attribute of the events a function emits (``/sla/<name>``)."""
    return f"{SOURCE_PREFIX}{function}"


class EventData(BaseModel):
    """The data of a ``dev.sla.*`` event: versioned, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = EVENT_VERSION


class ForeignData(BaseModel):
    """The data of an event the system does not produce: extra fields kept."""

    model_config = ConfigDict(extra="allow", frozen=True)


class PingData(ForeignData):
    """A PingSource sends no data (or whatever its spec says, which is ignored)."""


class SloEvaluate(EventData):
    """One shard of a tick: evaluate these SLOs at ``evaluated_at``."""

    slos: list[str] = Field(min_length=1)
    evaluated_at: UtcDatetime
    shard: int = Field(ge=0)
    shards: int = Field(ge=1)

    @field_validator("evaluated_at")
    @classmethod
    def _on_the_minute(cls, value: datetime) -> datetime:
        if value.second or value.microsecond:
            raise ValueError("must be on a whole minute, as a tick's time is")
        return value


class AlertReceived(EventData):
    """An Alertmanager alert, as webhook-intake passed it on.

    Field names follow Alertmanager's (``startsAt``, ``endsAt``, ``generatorURL``);
    ``slo`` is the ``namespace/name`` the alert's labels named, or null.
    ``receivedAt`` is when webhook-intake took it, the time an alert-driven
    evaluation is pinned to (rounded down to the minute).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None = None
    fingerprint: str = Field(min_length=1)
    generator_url: str | None = Field(default=None, alias="generatorURL")
    slo: str | None = None
    received_at: UtcDatetime | None = None


class ApiServerResource(ForeignData):
    """An ApiServerSource event in ``Resource`` mode: the object as the API has it."""

    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: dict[str, Any]
    spec: dict[str, Any] | None = None
    status: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _named(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("name"), str) or not value["name"]:
            raise ValueError("metadata.name is missing")
        return value


class EventRejection(EventData):
    """Why an event was refused or failed: the body of every non-2xx answer."""

    status: int
    reason: str
    field: str | None = None
    retryable: bool
    event_type: str | None = None
    event_source: str | None = None
    event_id: str | None = None


EVENT_DATA: Final[dict[str, type[BaseModel]]] = {
    PING: PingData,
    SLO_EVALUATE: SloEvaluate,
    ALERT_RECEIVED: AlertReceived,
    BUDGET_CALCULATED: BudgetSnapshot,
    FREEZE_REQUESTED: FreezeDecisionData,
    FREEZE_LIFTED: FreezeDecisionData,
    FREEZE_APPLIED: FreezeResultData,
    FREEZE_RELEASED: FreezeResultData,
    FREEZE_FAILED: FreezeResultData,
    SLO_VIOLATED: SloViolatedData,
    FREEZE_BREACHED: FreezeBreachedData,
    DEPLOYMENT_STARTED: Deployment,
    KAFKA_EVENT: Deployment,
    RESOURCE_ADD: ApiServerResource,
    RESOURCE_UPDATE: ApiServerResource,
    RESOURCE_DELETE: ApiServerResource,
}
"""Every event type of the catalogue and the model of its ``data``."""
