"""The policy evaluator: budget snapshots, overrides and deployments in, events out.

A handler calls :func:`evaluate_snapshot` for ``dev.sla.budget.calculated``,
:func:`check_deployment` for deployment events and :func:`set_override` /
:func:`clear_override` for the API's overrides, and emits the events returned.
Each policy's decision, its freeze state and its audit row are written in one
transaction. Two deliveries deciding for the same policy at once cannot both win:
the store applies a decision only over a lower sequence, so the loser rolls back
and decides again on the winner's state (a few times, then the broker retries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import ValidationError

from sla.clients.kube import KINDS
from sla.clients.store import (
    AuditEntry,
    CatalogueEntry,
    FreezeState,
    ManualOverride,
    ObjectRef,
    Store,
)
from sla.errors import StoreUnavailable
from sla.model.base import LabelSelector
from sla.model.freeze import (
    FREEZE_BREACHED,
    FREEZE_LIFTED,
    FREEZE_REQUESTED,
    SLO_VIOLATED,
    Deployment,
    FreezeBreachedData,
    FreezeDecisionData,
    OutgoingEvent,
    ScopeRef,
)
from sla.model.policy import SLAPolicy
from sla.model.snapshot import BudgetSnapshot
from sla.policy.decision import Decision, Override, PolicyMemory, decide
from sla.policy.deployments import ActiveFreeze
from sla.policy.deployments import check_deployment as judge
from sla.policy.scope import scope_ref
from sla.policy.violations import violation, violation_id
from sla.runtime import metrics

ACTOR: Final = "policy-evaluator"

DECISION_ATTEMPTS: Final = 3
"""Lost races per event before the broker is asked to retry: each loss means
another delivery decided in between, which takes milliseconds."""


class _LostRace(Exception):
    """Another decision for the same policy and scope was stored first."""


@dataclass(frozen=True)
class PolicyDecision:
    """One policy's decision, as audited."""

    policy: str
    scope: str
    decision: Decision
    audit_id: int


@dataclass(frozen=True)
class EvaluationResult:
    """The events to emit, and the decisions behind them."""

    events: list[OutgoingEvent] = field(default_factory=list)
    decisions: list[PolicyDecision] = field(default_factory=list)


@dataclass(frozen=True)
class SelectedPolicy:
    policy: SLAPolicy
    slos: tuple[str, ...]


async def evaluate_snapshot(
    snapshot: BudgetSnapshot, *, store: Store, now: datetime
) -> EvaluationResult:
    """Decide every policy that selects the snapshot's SLO; report a violation."""
    policies = await policies_selecting(store, snapshot.slo)
    events: list[OutgoingEvent] = []
    decisions: list[PolicyDecision] = []
    for selected in policies:
        others = [slo for slo in selected.slos if slo != snapshot.slo]
        latest = await store.latest_snapshots(others)
        made, emitted = await _decide_with_retries(
            store,
            selected,
            snapshots=[snapshot],
            known=list(latest.values()),
            now=now,
            trigger="snapshot",
        )
        decisions.append(made)
        events += emitted
    violated = await _violation(store, snapshot, now=now)
    return EvaluationResult(events + violated, decisions)


async def set_override(
    *,
    store: Store,
    policy: str,
    action: Literal["force", "lift"],
    expires_at: datetime,
    reason: str,
    actor: str,
    now: datetime,
) -> EvaluationResult:
    """Put a manual override in force, audited, and decide again at once."""
    override = ManualOverride(policy, action, expires_at, reason, actor)
    async with store.transaction() as tx:
        await tx.set_override(override)
        await tx.append_audit(
            AuditEntry(
                at=now,
                actor=actor,
                kind="override",
                subject=policy,
                outcome=f"set-{action}",
                inputs={"expires_at": _stamp(expires_at)},
                reasons=(reason,),
            )
        )
    return await _redecide(store, policy, now=now)


async def clear_override(
    *, store: Store, policy: str, actor: str, reason: str, now: datetime
) -> EvaluationResult:
    """Remove a policy's override, audited, and decide again at once."""
    async with store.transaction() as tx:
        existed = await tx.clear_override(policy)
        await tx.append_audit(
            AuditEntry(
                at=now,
                actor=actor,
                kind="override",
                subject=policy,
                outcome="cleared" if existed else "none-to-clear",
                reasons=(reason,),
            )
        )
    return await _redecide(store, policy, now=now)


async def check_deployment(
    deployment: Deployment, *, store: Store, now: datetime
) -> EvaluationResult:
    """Audit a deployment against the freezes in force; a breach is an event."""
    freezes = await _active_freezes(store, deployment)
    verdict = judge(deployment, freezes)
    await store.append_audit(
        AuditEntry(
            at=now,
            actor=deployment.actor,
            kind="deployment",
            subject=deployment.subject,
            outcome=verdict.outcome,
            inputs={
                "deployment": deployment.model_dump(mode="json"),
                "freezes": [f.policy for f in verdict.crossed],
            },
            reasons=verdict.reasons,
        )
    )
    if verdict.outcome != "breached":
        return EvaluationResult()
    return EvaluationResult([_breach_event(deployment, f) for f in verdict.crossed])


async def policies_selecting(store: Store, slo: str) -> list[SelectedPolicy]:
    """Valid policies in the SLO's namespace that select it, with all they select."""
    namespace, _, name = slo.partition("/")
    entries = await store.list_catalogue(namespace=namespace)
    labels = {e.name: e.labels for e in entries if e.kind == "SLODefinition"}
    labels.setdefault(name, {})
    found = []
    for entry in entries:
        policy = _valid_policy(entry)
        if policy is None:
            continue
        slos = _selected(policy, labels)
        if slo in slos:
            found.append(SelectedPolicy(policy, slos))
    return found


def _valid_policy(entry: CatalogueEntry) -> SLAPolicy | None:
    if entry.kind != "SLAPolicy" or entry.validation_error is not None:
        return None
    metadata = {"name": entry.name, "namespace": entry.namespace}
    try:
        return SLAPolicy.model_validate(
            {"metadata": metadata, "spec": entry.document.get("spec", {})}
        )
    except ValidationError:
        # slo-catalog validates before storing; a document that no longer loads
        # (an older schema) is skipped rather than failing every snapshot.
        return None


def _selected(policy: SLAPolicy, labels: dict[str, dict[str, str]]) -> tuple[str, ...]:
    namespace = policy.metadata.namespace
    names = policy.spec.slos.names
    if names is not None:
        return tuple(f"{namespace}/{n}" for n in sorted(names))
    chosen = (
        n for n, slo_labels in labels.items() if policy.spec.slos.selects(n, slo_labels)
    )
    return tuple(f"{namespace}/{n}" for n in sorted(chosen))


async def _redecide(
    store: Store, policy_key: str, *, now: datetime
) -> EvaluationResult:
    namespace, _, name = policy_key.partition("/")
    entries = await store.list_catalogue(kind="SLAPolicy", namespace=namespace)
    policy = next(
        (p for e in entries if e.name == name and (p := _valid_policy(e))), None
    )
    if policy is None:
        return EvaluationResult()
    slo_entries = await store.list_catalogue(kind="SLODefinition", namespace=namespace)
    labels = {e.name: e.labels for e in slo_entries}
    selected = SelectedPolicy(policy, _selected(policy, labels))
    made, events = await _decide_with_retries(
        store, selected, snapshots=[], known=[], now=now, trigger="override"
    )
    return EvaluationResult(events, [made])


async def _decide_with_retries(
    store: Store,
    selected: SelectedPolicy,
    *,
    snapshots: Sequence[BudgetSnapshot],
    known: Sequence[BudgetSnapshot],
    now: datetime,
    trigger: str,
) -> tuple[PolicyDecision, list[OutgoingEvent]]:
    for _ in range(DECISION_ATTEMPTS):
        try:
            return await _decide_once(
                store,
                selected,
                snapshots=snapshots,
                known=known,
                now=now,
                trigger=trigger,
            )
        except _LostRace:
            continue
    raise StoreUnavailable(
        f"{selected.policy.key}: {DECISION_ATTEMPTS} decisions in a row lost the race"
        " to concurrent ones; retry later"
    )


async def _decide_once(
    store: Store,
    selected: SelectedPolicy,
    *,
    snapshots: Sequence[BudgetSnapshot],
    known: Sequence[BudgetSnapshot],
    now: datetime,
    trigger: str,
) -> tuple[PolicyDecision, list[OutgoingEvent]]:
    policy = selected.policy
    scope = scope_ref(policy)
    async with store.transaction() as tx:
        stored = await tx.freeze_state(policy.key, scope.key)
        memory = _memory(stored)
        override = await _override(tx, policy.key, now)
        decision = decide(
            policy.spec,
            memory=memory,
            selected=selected.slos,
            snapshots=snapshots,
            override=override,
            now=now,
            known=known,
        )
        if decision.sequence != memory.sequence:
            state = _freeze_state(policy, scope, decision, stored)
            if not await tx.apply_freeze_decision(state):
                raise _LostRace
            held = freeze_held_seconds(stored, decision)
            if held is not None:
                # Counted with the decision, so a redelivery cannot count it twice.
                await tx.add_to_counters(metrics.FREEZE_DURATION.observe(held))
        audit_id = await tx.append_audit(
            _audit(
                policy,
                scope,
                decision,
                memory,
                [*snapshots, *known],
                override,
                trigger,
            )
        )
    made = PolicyDecision(policy.key, scope.key, decision, audit_id)
    return made, _decision_events(policy, scope, decision)


def freeze_held_seconds(stored: FreezeState | None, decision: Decision) -> float | None:
    """How long the freeze a lift ends held, from the freeze's decision to the
    lift's; None for anything but a lift of a recorded freeze."""
    if decision.action != "lift" or stored is None:
        return None
    since = stored.details.get("frozen_since")
    if not since:
        return None
    held = decision.decided_at - datetime.fromisoformat(since)
    return max(held.total_seconds(), 0.0)


def _memory(stored: FreezeState | None) -> PolicyMemory:
    if stored is None:
        return PolicyMemory()
    return PolicyMemory.model_validate(stored.details.get("memory", {}))


async def _override(tx: Store, policy: str, now: datetime) -> Override | None:
    active = await tx.active_overrides(now=now, policy=policy)
    if not active:
        return None
    found = active[0]
    return Override(found.action, found.expires_at, found.reason, found.actor)


def _freeze_state(
    policy: SLAPolicy, scope: ScopeRef, decision: Decision, stored: FreezeState | None
) -> FreezeState:
    frozen_since = (stored.details.get("frozen_since") if stored else None) or None
    if decision.action == "freeze":
        frozen_since = _stamp(decision.decided_at)
    elif decision.state == "lifted":
        frozen_since = None
    details: dict[str, Any] = {
        "memory": decision.memory.model_dump(mode="json"),
        "scope": scope.model_dump(mode="json"),
        "selector": policy.spec.scope.selector.model_dump(mode="json"),
        "mode": policy.spec.mode,
        "dry_run": policy.spec.dry_run,
        "frozen_since": frozen_since,
    }
    return FreezeState(
        policy=policy.key,
        scope=scope.key,
        state=decision.state,
        decision_seq=decision.sequence,
        decided_at=decision.decided_at,
        reason="; ".join(decision.reasons),
        details=details,
    )


def _audit(
    policy: SLAPolicy,
    scope: ScopeRef,
    decision: Decision,
    before: PolicyMemory,
    snapshots: Sequence[BudgetSnapshot],
    override: Override | None,
    trigger: str,
) -> AuditEntry:
    outcome: str = decision.action if decision.changed else "no-change"
    if decision.sequence == before.sequence:
        outcome = "ignored"
    inputs = {
        "trigger": trigger,
        "scope": scope.key,
        "sequence": decision.sequence,
        "state_before": before.state,
        "state_after": decision.state,
        "computed": decision.memory.computed,
        "snapshots": [_snapshot_input(s) for s in snapshots],
        "override": None if override is None else override.describe(),
    }
    return AuditEntry(
        at=decision.decided_at,
        actor=ACTOR,
        kind="freeze-decision",
        subject=policy.key,
        outcome=outcome,
        inputs=inputs,
        reasons=decision.reasons,
    )


def _snapshot_input(snapshot: BudgetSnapshot) -> dict[str, Any]:
    return {
        "slo": snapshot.slo,
        "evaluated_at": _stamp(snapshot.evaluated_at),
        "status": snapshot.status,
        "remaining": snapshot.error_budget.remaining,
        "firing": [
            f"{a.severity} {a.long_window}/{a.short_window}"
            for a in snapshot.alerts
            if a.firing
        ],
    }


def _decision_events(
    policy: SLAPolicy, scope: ScopeRef, decision: Decision
) -> list[OutgoingEvent]:
    if not decision.changed:
        return []
    action: Literal["freeze", "lift"] = (
        "freeze" if decision.action == "freeze" else "lift"
    )
    data = FreezeDecisionData(
        policy=policy.key,
        scope=scope,
        action=action,
        mode=policy.spec.mode,
        dry_run=policy.spec.dry_run,
        reason=decision.reasons[0] if decision.reasons else action,
        reasons=list(decision.reasons),
        decision_seq=decision.sequence,
        decided_at=decision.decided_at,
    )
    return [
        OutgoingEvent(
            type=FREEZE_REQUESTED if action == "freeze" else FREEZE_LIFTED,
            id=decision_event_id(policy.key, scope.key, decision.sequence),
            subject=policy.key,
            data=data.model_dump(mode="json"),
        )
    ]


def decision_event_id(policy: str, scope: str, sequence: int) -> str:
    """Deterministic: a policy, a scope and a sequence make one decision."""
    return f"{policy}/{scope}/{sequence}"


async def _violation(
    store: Store, snapshot: BudgetSnapshot, *, now: datetime
) -> list[OutgoingEvent]:
    previous = await store.previous_snapshot(snapshot.slo, snapshot.evaluated_at)
    data = violation(snapshot, previous)
    if data is None:
        return []
    await store.append_audit(
        AuditEntry(
            at=now,
            actor=ACTOR,
            kind="slo-violation",
            subject=snapshot.slo,
            outcome="violated",
            inputs={
                "evaluated_at": _stamp(snapshot.evaluated_at),
                "status": snapshot.status,
                "previous_status": None if previous is None else previous.status,
            },
            reasons=(data.reason,),
        )
    )
    return [
        OutgoingEvent(
            type=SLO_VIOLATED,
            id=violation_id(snapshot),
            subject=snapshot.slo,
            data=data.model_dump(mode="json"),
        )
    ]


async def _active_freezes(store: Store, deployment: Deployment) -> list[ActiveFreeze]:
    states = await store.freeze_states(state="frozen")
    kind = KINDS.get(deployment.kind)
    held = None
    if kind is not None:
        ref = ObjectRef(kind.group, kind.kind, deployment.namespace, deployment.name)
        held = await store.frozen_object(ref)
    holders = set(held.holders) if held is not None else set()
    return [_active_freeze(state, state.policy in holders) for state in states]


def _active_freeze(state: FreezeState, holds_object: bool) -> ActiveFreeze:
    details = state.details
    since = details.get("frozen_since")
    return ActiveFreeze(
        policy=state.policy,
        scope=ScopeRef.model_validate(details["scope"]),
        selector=LabelSelector.model_validate(details.get("selector", {})),
        frozen_since=datetime.fromisoformat(since) if since else state.decided_at,
        reason=state.reason,
        holds_object=holds_object,
    )


def _breach_event(deployment: Deployment, freeze: ActiveFreeze) -> OutgoingEvent:
    data = FreezeBreachedData(
        deployment=deployment,
        policy=freeze.policy,
        scope=freeze.scope.key,
        frozen_since=freeze.frozen_since,
        reason=f"{deployment.subject} deployed during the freeze of {freeze.policy}",
    )
    stamp = _stamp(deployment.time)
    return OutgoingEvent(
        type=FREEZE_BREACHED,
        id=f"breached:{deployment.subject}:{deployment.version}@{stamp}:{freeze.policy}",
        subject=deployment.subject,
        data=data.model_dump(mode="json"),
    )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
