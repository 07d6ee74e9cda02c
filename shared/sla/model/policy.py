"""The ``SLAPolicy`` resource: when to freeze releases, and when to lift."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sla.model.base import (
    BudgetPercent,
    LabelSelector,
    ObjectMeta,
    ObjectName,
    SpecModel,
)
from sla.model.durations import Duration

WorkloadKind = Literal[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Rollout",
    "Application",
    "Kustomization",
    "HelmRelease",
]

MODE_KINDS: dict[str, tuple[str, ...]] = {
    "annotate": ("Deployment", "StatefulSet", "DaemonSet", "Rollout"),
    "argocd": ("Application",),
    "flux": ("Kustomization", "HelmRelease"),
}
"""Which kinds each enforcement mode can hold, and its default scope."""


class SLOSelection(SpecModel):
    names: list[ObjectName] | None = None
    selector: LabelSelector | None = None

    @model_validator(mode="after")
    def _names_or_selector(self) -> SLOSelection:
        if (self.names is None) == (self.selector is None):
            raise ValueError("give exactly one of names or selector")
        if self.names is not None and not self.names:
            raise ValueError("names must list at least one SLODefinition")
        return self

    def selects(self, name: str, labels: dict[str, str]) -> bool:
        if self.names is not None:
            return name in self.names
        assert self.selector is not None
        return self.selector.matches(labels)


class FreezeCondition(SpecModel):
    budget_remaining_below: BudgetPercent | None = None
    alert_firing: Literal["page", "ticket"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> FreezeCondition:
        given = [
            v for v in (self.budget_remaining_below, self.alert_firing) if v is not None
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of budgetRemainingBelow or alertFiring")
        return self


class Freeze(SpecModel):
    when: list[FreezeCondition] = Field(min_length=1)
    match: Literal["any", "all"] = "any"
    on_no_data: Literal["keep", "freeze", "lift"] = "keep"


class Lift(SpecModel):
    """Lift when remaining stays above the level, no page alert firing, for holdFor."""

    budget_remaining_above: BudgetPercent
    hold_for: Duration = 1800


class Scope(SpecModel):
    selector: LabelSelector = Field(default_factory=LabelSelector)
    kinds: list[WorkloadKind] | None = None
    namespaces: list[ObjectName] | None = None


class SLAPolicySpec(SpecModel):
    slos: SLOSelection
    combine: Literal["any", "all"] = "any"
    freeze: Freeze
    lift: Lift
    scope: Scope = Field(default_factory=Scope)
    mode: Literal["annotate", "argocd", "flux"] = "annotate"
    dry_run: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> SLAPolicySpec:
        levels = [
            c.budget_remaining_below
            for c in self.freeze.when
            if c.budget_remaining_below is not None
        ]
        if levels and self.lift.budget_remaining_above <= max(levels):
            lift_level = self.lift.budget_remaining_above
            raise ValueError(
                f"lift.budgetRemainingAbove ({lift_level}) must be higher than "
                f"the freeze level ({max(levels)}), or the freeze would flap"
            )
        allowed = MODE_KINDS[self.mode]
        wrong = [kind for kind in self.scope.kinds or () if kind not in allowed]
        if wrong:
            raise ValueError(
                f"mode {self.mode} cannot hold {', '.join(wrong)}; "
                f"it holds {', '.join(allowed)}"
            )
        return self

    @property
    def scope_kinds(self) -> tuple[str, ...]:
        return tuple(self.scope.kinds) if self.scope.kinds else MODE_KINDS[self.mode]


class SLAPolicy(SpecModel):
    api_version: Literal["sla.dev/v1alpha1"] = "sla.dev/v1alpha1"
    kind: Literal["SLAPolicy"] = "SLAPolicy"
    metadata: ObjectMeta
    spec: SLAPolicySpec
    status: dict[str, Any] | None = Field(default=None, exclude=True)

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"
