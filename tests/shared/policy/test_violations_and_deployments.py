"""slo.violated's rule, and deployments checked against freezes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sla.model.base import LabelSelector
from sla.model.freeze import Deployment, ScopeRef
from sla.model.snapshot import BudgetSnapshot
from sla.policy.deployments import ActiveFreeze, check_deployment
from sla.policy.violations import violation
from tests.support.policy_snapshots import T0, A, snap


def exhausted(minute: int) -> BudgetSnapshot:
    return snap(A, minute, -0.25).model_copy(update={"status": "exhausted"})


def test_entering_exhausted_is_a_violation() -> None:
    found = violation(exhausted(1), snap(A, 0, 0.1))
    assert found is not None
    assert (
        found.reason == "shop/checkout: the error budget is exhausted (remaining -0.25)"
    )


def test_staying_exhausted_is_not_a_new_violation() -> None:
    assert violation(exhausted(2), exhausted(1)) is None


def test_a_page_alert_that_starts_firing_is_a_violation() -> None:
    found = violation(snap(A, 1, 0.5, page=True), snap(A, 0, 0.5))
    assert found is not None
    assert [a.long_window for a in found.firing] == ["1h"]
    assert violation(snap(A, 2, 0.5, page=True), snap(A, 1, 0.5, page=True)) is None


def test_a_ticket_alert_is_not_a_violation() -> None:
    assert violation(snap(A, 1, 0.5, ticket=True), snap(A, 0, 0.5)) is None


def freeze(selector: str = "", since: datetime = T0) -> ActiveFreeze:
    labels = {"tier": "web"} if selector else {}
    return ActiveFreeze(
        policy="shop/freeze",
        scope=ScopeRef(
            key="k", namespaces=["shop"], kinds=["Deployment"], selector=selector
        ),
        selector=LabelSelector(match_labels=labels),
        frozen_since=since,
        reason="budget spent",
    )


def deployment(**changes: object) -> Deployment:
    fields: dict[str, object] = {
        "namespace": "shop",
        "kind": "Deployment",
        "name": "web",
        "version": "v2",
        "actor": "ci",
        "time": T0 + timedelta(minutes=5),
    }
    fields.update(changes)
    return Deployment.model_validate(fields)


def test_a_deployment_during_a_freeze_is_a_breach() -> None:
    assert check_deployment(deployment(), [freeze()]).outcome == "breached"


def test_an_exempt_deployment_is_audited_as_exempt() -> None:
    verdict = check_deployment(deployment(exemption="CVE fix"), [freeze()])
    assert verdict.outcome == "exempt"


def test_a_deployment_before_the_freeze_is_allowed() -> None:
    late = freeze(since=T0 + timedelta(hours=1))
    assert check_deployment(deployment(), [late]).outcome == "allowed"


def test_a_selector_is_checked_against_the_deployments_labels() -> None:
    scoped = freeze(selector="tier=web")
    other = deployment(labels={"tier": "batch"})
    assert check_deployment(other, [scoped]).outcome == "allowed"
    assert check_deployment(deployment(labels={"tier": "web"}), [scoped]).outcome == (
        "breached"
    )


def test_time_zones_are_compared_as_instants() -> None:
    local = datetime(2026, 3, 2, 11, 5, tzinfo=UTC).astimezone()
    assert check_deployment(deployment(time=local), [freeze()]).outcome == "breached"
