"""freeze-enforcer: a freeze decision in, the workloads in scope held or released.

Takes ``dev.sla.freeze.requested`` and ``dev.sla.freeze.lifted`` from
policy-evaluator, and from budget-api, which posts the decisions its manual
overrides make (source ``/sla/budget-api``); both carry the same decision data.
Emits ``dev.sla.freeze.applied`` or ``.released``, and ``.failed`` for objects it
could not change (a 403 says which verb), or for a decision it refused as a whole
(more objects than ``SLA_ENFORCEMENT_MAX_OBJECTS``).

Settings: ``SLA_ENFORCEMENT`` (``on``, ``dry-run``, ``off``),
``SLA_ENFORCEMENT_MAX_OBJECTS``, ``SLA_ALLOW_CROSS_NAMESPACE``. The cluster is
``SLA_KUBECONFIG`` or the pod's ServiceAccount; with neither (a workstation,
``sla dev``) every decision is a dry run, audited and answered like any other.

Idempotency: the enforcement cannot share a transaction with the answer, because
each object's store record has to be committed before (hold) or after (release)
its Kubernetes patch to survive a crash in between. It is idempotent on its own
instead: one enforcement per policy and scope at a time, a decision counts as done
only once its result events are recorded, a decision not newer than the last one
enforced changes nothing (a repeat answers the recorded events again), and every
object step can be redone. So a delivery that stopped half-way (the Kubernetes API
or the store unavailable: 503, retried by the broker) is finished by the next one,
and the same decision arriving from two sources is enforced once.
"""

from __future__ import annotations

from typing import Final

from sla.model.freeze import FREEZE_LIFTED, FREEZE_REQUESTED, FreezeDecisionData
from sla.runtime.binding import EventRejected, JsonData
from sla.runtime.function import Accept, Delivery, Function, Outcome, from_functions
from sla.runtime.settings import Settings
from sla.services.enforcement import EnforcementResult, EnforcementSettings, enforce

NAME: Final = "freeze-enforcer"

LEASE_SECONDS: Final = 120.0
"""The Knative Service's timeoutSeconds: a decision over 50 objects may take that
long, and a second delivery must wait for it rather than enforce alongside."""

ACTIONS: Final = {FREEZE_REQUESTED: "freeze", FREEZE_LIFTED: "lift"}
"""The action each event type must carry: a mismatch is a producer's bug."""

DECIDERS: Final = from_functions("policy-evaluator", "budget-api")


async def on_decision(delivery: Delivery[FreezeDecisionData]) -> Outcome:
    decision = delivery.data
    if decision.action != ACTIONS[delivery.type]:
        raise EventRejected(
            400,
            f"{delivery.type} must carry action {ACTIONS[delivery.type]}, "
            f"not {decision.action}",
            field="data.action",
        )
    result = await enforce(
        decision,
        store=await delivery.deps.store(),
        kube=await delivery.deps.kube_if_configured(),
        settings=enforcement_settings(delivery.settings),
        now=delivery.received_at,
    )
    events = [
        delivery.emit(
            event.type, id=event.id, data=JsonData(event.data), subject=event.subject
        )
        for event in result.events
    ]
    return Outcome(events=events, detail=_summary(decision, result))


def enforcement_settings(settings: Settings) -> EnforcementSettings:
    return EnforcementSettings(
        enforcement=settings.enforcement,
        max_objects=settings.enforcement_max_objects,
        allow_cross_namespace=settings.allow_cross_namespace,
    )


def _summary(decision: FreezeDecisionData, result: EnforcementResult) -> str:
    head = f"{decision.policy} {decision.action} #{decision.decision_seq}"
    if result.note:
        return f"{head}: {result.note}"
    counts: dict[str, int] = {}
    for obj in result.objects:
        counts[obj.outcome] = counts.get(obj.outcome, 0) + 1
    shown = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    dry = " (dry run)" if result.dry_run else ""
    return f"{head}{dry}: {shown or 'no object in scope'}"


function = Function(
    NAME,
    accepts=[
        Accept(
            FREEZE_REQUESTED, on_decision, sources=DECIDERS, data=FreezeDecisionData
        ),
        Accept(FREEZE_LIFTED, on_decision, sources=DECIDERS, data=FreezeDecisionData),
    ],
    lease_seconds=LEASE_SECONDS,
)
handler = function.target()
