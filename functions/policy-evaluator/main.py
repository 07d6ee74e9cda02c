"""policy-evaluator: freeze decisions from budgets, deployments checked against them.

Takes three events:

- ``dev.sla.budget.calculated`` from sli-calculator: every SLAPolicy that selects
  the snapshot's SLO decides again (freeze, lift or nothing, with hysteresis), and
  an SLO that turned bad is reported. Emits ``dev.sla.freeze.requested``,
  ``dev.sla.freeze.lifted`` and ``dev.sla.slo.violated``.
- ``dev.sla.deployment.started``, posted to the broker by CI/CD pipelines: the
  deployment is audited against the freezes in force (``allowed``, ``exempt`` or
  ``breached``); a breach emits ``dev.sla.freeze.breached``. Pipelines are
  arbitrary, and each names itself in ``source`` as it likes, so this type is
  accepted from any source: the event type is the contract, and the Trigger that
  routes it here filters on the type alone.
- ``dev.knative.kafka.event`` from the KafkaSource ``sla-deployments`` (any
  namespace, any topic it reads): the record's JSON value is a deployment, handled
  as above. Kafka events of any other source are refused.

Every decision is made inside the transaction that records the event as processed
(``Outcome.decide``): the freeze state, its audit rows and the answer commit
together or not at all. A redelivery therefore finds the stored answer and gets the
same events with the same ids, and a delivery that failed half-way left nothing to
decide twice. Snapshots arriving out of order are the decision's business: one not
newer than the newest seen for its SLO changes nothing and is audited as ignored.
One event is the reply; several (two policies deciding, or a freeze and a
violation) go to ``K_SINK``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from sla.clients.store import Store
from sla.model.events import BUDGET_CALCULATED, DEPLOYMENT_STARTED, KAFKA_EVENT
from sla.model.freeze import Deployment
from sla.model.freeze import OutgoingEvent as ServiceEvent
from sla.model.snapshot import BudgetSnapshot
from sla.runtime.binding import JsonData, OutgoingEvent
from sla.runtime.function import (
    ANY_SOURCE,
    Accept,
    Delivery,
    Function,
    Outcome,
    SourceRule,
    from_function,
)
from sla.services.policy_evaluation import (
    EvaluationResult,
    check_deployment,
    evaluate_snapshot,
)

NAME: Final = "policy-evaluator"

KAFKA_DEPLOYMENTS: Final = SourceRule(
    "KafkaSource sla-deployments",
    # Knative's KafkaSource names a record's source
    # /apis/v1/namespaces/<namespace>/kafkasources/<name>#<topic>; a topic name is
    # made of ASCII letters, digits, '.', '_' and '-' (Kafka's own rule).
    re.compile(
        r"/apis/v1/namespaces/[a-z0-9]([-a-z0-9]*[a-z0-9])?/kafkasources/"
        r"sla-deployments#[A-Za-z0-9._-]+"
    ),
)


async def on_budget(delivery: Delivery[BudgetSnapshot]) -> Outcome:
    snapshot = delivery.data

    async def decide(tx: Store) -> Outcome:
        result = await evaluate_snapshot(snapshot, store=tx, now=delivery.received_at)
        return Outcome(
            events=_emitted(delivery, result.events),
            slos=[snapshot.slo],
            detail=_decisions(result),
        )

    return Outcome(decide=decide, slos=[snapshot.slo])


async def on_deployment(delivery: Delivery[Deployment]) -> Outcome:
    deployment = delivery.data

    async def decide(tx: Store) -> Outcome:
        result = await check_deployment(deployment, store=tx, now=delivery.received_at)
        crossed = ", ".join(event.data["policy"] for event in result.events)
        return Outcome(
            events=_emitted(delivery, result.events),
            detail=f"{deployment.subject} {deployment.version}: "
            + (f"breached {crossed}" if crossed else "no freeze crossed"),
        )

    return Outcome(decide=decide)


def _emitted(
    delivery: Delivery[Any], events: Sequence[ServiceEvent]
) -> list[OutgoingEvent]:
    return [
        delivery.emit(
            event.type, id=event.id, data=JsonData(event.data), subject=event.subject
        )
        for event in events
    ]


def _decisions(result: EvaluationResult) -> str:
    if not result.decisions:
        return "no policy selects this SLO"
    made = [
        f"{d.policy}: {d.decision.action} (sequence {d.decision.sequence})"
        for d in result.decisions
    ]
    violated = [e.subject for e in result.events if e.type.endswith(".slo.violated")]
    return "; ".join(made + [f"{slo} violated" for slo in violated])


function = Function(
    NAME,
    accepts=[
        Accept(BUDGET_CALCULATED, on_budget, sources=from_function("sli-calculator")),
        Accept(DEPLOYMENT_STARTED, on_deployment, sources=ANY_SOURCE, data=Deployment),
        Accept(KAFKA_EVENT, on_deployment, sources=KAFKA_DEPLOYMENTS, data=Deployment),
    ],
)
handler = function.target()
