"""A deployment checked against the freezes in force when it happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sla.model.base import LabelSelector
from sla.model.freeze import Deployment, ScopeRef

DeploymentOutcome = Literal["allowed", "exempt", "breached"]


@dataclass(frozen=True)
class ActiveFreeze:
    """A freeze in force: its policy, scope and start.

    ``holds_object`` says the enforcer recorded the deployed object as held by this
    freeze; otherwise the scope's namespaces, kinds and (when the deployment
    carries labels) selector decide whether the freeze covers it.
    """

    policy: str
    scope: ScopeRef
    selector: LabelSelector
    frozen_since: datetime
    reason: str
    holds_object: bool = False


@dataclass(frozen=True)
class DeploymentVerdict:
    outcome: DeploymentOutcome
    crossed: tuple[ActiveFreeze, ...]
    reasons: tuple[str, ...]


def covers(freeze: ActiveFreeze, deployment: Deployment) -> bool:
    """Whether the freeze was in force over the deployed object at its time."""
    if deployment.time < freeze.frozen_since:
        return False
    if freeze.holds_object:
        return True
    in_scope = (
        deployment.namespace in freeze.scope.namespaces
        and deployment.kind in freeze.scope.kinds
    )
    if not in_scope:
        return False
    if deployment.labels is not None:
        return freeze.selector.matches(deployment.labels)
    # Without labels only a scope that selects everything is known to cover it.
    return not freeze.scope.selector


def check_deployment(
    deployment: Deployment, freezes: list[ActiveFreeze]
) -> DeploymentVerdict:
    """Allowed, exempt (it crossed a freeze with an exemption), or breached."""
    crossed = tuple(f for f in freezes if covers(f, deployment))
    what = f"{deployment.subject} version {deployment.version} by {deployment.actor}"
    if not crossed:
        return DeploymentVerdict("allowed", (), (f"{what}: no freeze in force",))
    held = ", ".join(f"{f.policy} ({f.reason})" for f in crossed)
    if deployment.exemption:
        reason = f"{what}: exempt ({deployment.exemption}) from the freeze of {held}"
        return DeploymentVerdict("exempt", crossed, (reason,))
    reason = f"{what}: deployed during the freeze of {held}"
    return DeploymentVerdict("breached", crossed, (reason,))
