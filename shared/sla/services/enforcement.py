"""The freeze-enforcer: a freeze decision in, the cluster changed, events out.

A handler calls :func:`enforce` with the data of ``dev.sla.freeze.requested`` or
``dev.sla.freeze.lifted`` and emits the events returned
(``dev.sla.freeze.applied``, ``.released``, ``.failed``).

One decision at a time per policy and scope (a PostgreSQL advisory lock). A
decision older than the last one enforced for its scope changes nothing, and one
already enforced answers the events it produced then, so reversed, repeated and
redelivered decisions are all safe. A decision that stopped half-way (the broker
retries on KubeUnavailable or StoreUnavailable) is finished by its redelivery:
every object step is idempotent, and the decision counts as enforced only once
its result events are recorded.

Freezing lists the scope (the policy's own namespace unless the cluster allows
others; its label selector; its kinds) and holds each object; lifting releases
the objects the store says this policy holds, whatever their labels are now.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from sla.clients.kube import KINDS, JsonObject, KubeClient
from sla.clients.store import AuditEntry, FreezeEvent, Store
from sla.model.freeze import (
    FREEZE_APPLIED,
    FREEZE_FAILED,
    FREEZE_RELEASED,
    FreezeDecisionData,
    FreezeResultData,
    ObjectOutcome,
    OutgoingEvent,
)
from sla.policy.holds import (
    FLUX_SYSTEM,
    MAX_FLUX_DEPTH,
    flux_parent,
    is_exempt,
    mode_of,
)
from sla.services.enforcement_objects import Holder, Target

ACTOR: Final = "freeze-enforcer"

EnforcementSwitch = Literal["on", "dry-run", "off"]


@dataclass(frozen=True)
class EnforcementSettings:
    """``SLA_ENFORCEMENT``, ``SLA_ENFORCEMENT_MAX_OBJECTS``,
    ``SLA_ALLOW_CROSS_NAMESPACE``."""

    enforcement: EnforcementSwitch = "on"
    max_objects: int = 50
    allow_cross_namespace: bool = False


@dataclass(frozen=True)
class EnforcementResult:
    """The events to emit and every object's outcome; ``note`` says why nothing
    was done (stale, enforcement off) when that is the case."""

    events: list[OutgoingEvent] = field(default_factory=list)
    objects: list[ObjectOutcome] = field(default_factory=list)
    dry_run: bool = False
    note: str | None = None


async def enforce(
    decision: FreezeDecisionData,
    *,
    store: Store,
    kube: KubeClient | None,
    settings: EnforcementSettings,
    now: datetime,
) -> EnforcementResult:
    """Apply or lift one freeze decision (see the module docstring)."""
    if settings.enforcement == "off":
        note = "SLA_ENFORCEMENT is off: nothing is enforced"
        await _audit(store, decision, "off", [note], now=now)
        return EnforcementResult(note=note)

    async with store.scope_lock(decision.policy, decision.scope.key):
        last = await store.last_enforced_sequence(decision.policy, decision.scope.key)
        if last is not None and decision.decision_seq <= last:
            return await _already_enforced(store, decision, last, now=now)
        dry_run = decision.dry_run or settings.enforcement == "dry-run" or kube is None
        if decision.action == "freeze":
            outcomes, refusal = await _freeze(
                decision, store, kube, settings, dry_run, now
            )
        else:
            outcomes, refusal = await _lift(
                decision, store, kube, settings, dry_run, now
            )
        events = _result_events(decision, outcomes, refusal, dry_run)
        await _record(store, events, decision, now=now)
    reasons = [refusal] if refusal else [_summary(outcomes, dry_run)]
    outcome = "refused" if refusal else ("dry-run" if dry_run else decision.action)
    await _audit(store, decision, outcome, reasons, now=now, outcomes=outcomes)
    return EnforcementResult(events, outcomes, dry_run)


async def _already_enforced(
    store: Store, decision: FreezeDecisionData, last: int, *, now: datetime
) -> EnforcementResult:
    if decision.decision_seq < last:
        note = (
            f"decision {decision.decision_seq} is older than decision {last}, "
            "already enforced for this scope; it changes nothing"
        )
        await _audit(store, decision, "ignored", [note], now=now)
        return EnforcementResult(note=note)
    ids = [
        result_event_id(decision, kind) for kind in ("applied", "released", "failed")
    ]
    recorded = await store.freeze_events_by_id(ids)
    events = [
        OutgoingEvent(type=e.type, id=e.id, subject=e.policy, data=e.data)
        for e in recorded
    ]
    note = f"decision {last} was enforced before; its events are given again"
    return EnforcementResult(events, note=note)


async def _freeze(
    decision: FreezeDecisionData,
    store: Store,
    kube: KubeClient | None,
    settings: EnforcementSettings,
    dry_run: bool,
    now: datetime,
) -> tuple[list[ObjectOutcome], str | None]:
    if kube is None:
        return [], None  # no cluster: the dry run has nothing to list
    namespaces, refused = _allowed_namespaces(decision, settings)
    objects = await _list_scope(kube, decision, namespaces)
    outcomes = [_refused_namespace(decision, ns) for ns in refused]
    if len(objects) > settings.max_objects:
        return outcomes, (
            f"the scope holds {len(objects)} objects, more than the "
            f"{settings.max_objects} one decision may touch "
            "(SLA_ENFORCEMENT_MAX_OBJECTS); nothing was changed"
        )
    holder = Holder(kube, store, decision.policy, decision.reason, now)
    for obj, blocker in _in_holding_order(objects):
        target = Target.of(obj)
        if blocker is not None:
            skipped = _is_flux_system(obj)
            outcomes.append(
                target.outcome("skipped" if skipped else "failed", reason=blocker)
            )
        elif dry_run:
            outcomes.append(_dry_hold(target, obj))
        else:
            outcomes.append(await holder.hold(target))
    return outcomes, None


async def _lift(
    decision: FreezeDecisionData,
    store: Store,
    kube: KubeClient | None,
    settings: EnforcementSettings,
    dry_run: bool,
    now: datetime,
) -> tuple[list[ObjectOutcome], str | None]:
    held = await store.frozen_objects(holder=decision.policy)
    targets = [
        Target.from_ref(h.ref) for h in held if h.ref.kind in decision.scope.kinds
    ]
    if dry_run:
        return [t.outcome("released") for t in targets], None
    assert kube is not None  # a run without a cluster is a dry run
    holder = Holder(kube, store, decision.policy, decision.reason, now)
    return [await holder.release(t) for t in targets], None


def _allowed_namespaces(
    decision: FreezeDecisionData, settings: EnforcementSettings
) -> tuple[list[str], list[str]]:
    own = decision.policy.partition("/")[0]
    if settings.allow_cross_namespace:
        return list(decision.scope.namespaces), []
    allowed = [ns for ns in decision.scope.namespaces if ns == own]
    return allowed, [ns for ns in decision.scope.namespaces if ns != own]


def _refused_namespace(decision: FreezeDecisionData, namespace: str) -> ObjectOutcome:
    return ObjectOutcome(
        api_version="v1",
        kind="Namespace",
        namespace=namespace,
        name=namespace,
        outcome="failed",
        reason=(
            f"{decision.policy} may not freeze objects in namespace {namespace}: "
            "SLA_ALLOW_CROSS_NAMESPACE is false"
        ),
    )


async def _list_scope(
    kube: KubeClient, decision: FreezeDecisionData, namespaces: list[str]
) -> list[JsonObject]:
    found: list[JsonObject] = []
    for namespace in namespaces:
        for kind in decision.scope.kinds:
            found += await asyncio.to_thread(
                kube.list_objects,
                KINDS[kind],
                namespace,
                label_selector=decision.scope.selector,
            )
    return found


def _in_holding_order(
    objects: list[JsonObject],
) -> list[tuple[JsonObject, str | None]]:
    """Objects with what blocks each (or None), parents before their children."""
    in_scope = {_flux_key(o): o for o in objects if o["kind"] == "Kustomization"}
    ranked = []
    for obj in objects:
        depth, blocker = _flux_standing(obj, in_scope)
        meta = obj["metadata"]
        ranked.append(
            (depth, obj["kind"], meta["namespace"], meta["name"], obj, blocker)
        )
    ranked.sort(key=lambda row: row[:4])
    return [(row[4], row[5]) for row in ranked]


def _flux_standing(
    obj: JsonObject, in_scope: dict[tuple[str, str], JsonObject]
) -> tuple[int, str | None]:
    """How deep a Flux object sits under the scope's Kustomizations, and why it
    cannot be held: in flux-system, or applied by a Kustomization the freeze does
    not suspend, whose next reconciliation would undo the suspension."""
    if mode_of(obj["kind"]) != "flux":
        return 0, None
    if _is_flux_system(obj):
        return 0, f"objects in {FLUX_SYSTEM} are never suspended"
    parent = flux_parent(obj)
    for depth in range(MAX_FLUX_DEPTH):
        if parent is None:
            return depth, None
        if parent not in in_scope or parent[0] == FLUX_SYSTEM:
            return depth, (
                f"cannot hold: applied by Kustomization {parent[0]}/{parent[1]}, "
                "which this freeze does not suspend and which would undo the "
                "suspension; put it in the scope, or freeze with another mode"
            )
        parent = flux_parent(in_scope[parent])
    return MAX_FLUX_DEPTH, "cannot hold: the chain of parent Kustomizations loops"


def _flux_key(obj: JsonObject) -> tuple[str, str]:
    return (obj["metadata"]["namespace"], obj["metadata"]["name"])


def _is_flux_system(obj: JsonObject) -> bool:
    return (
        mode_of(obj["kind"]) == "flux" and obj["metadata"]["namespace"] == FLUX_SYSTEM
    )


def _dry_hold(target: Target, obj: JsonObject) -> ObjectOutcome:
    if is_exempt(obj):
        return target.outcome("exempt", reason="sla.dev/freeze-exempt is set")
    return target.outcome("applied", reason="dry run: nothing was changed")


def _result_events(
    decision: FreezeDecisionData,
    outcomes: list[ObjectOutcome],
    refusal: str | None,
    dry_run: bool,
) -> list[OutgoingEvent]:
    def event(kind: str, objects: list[ObjectOutcome]) -> OutgoingEvent:
        data = FreezeResultData(
            policy=decision.policy,
            scope=decision.scope.key,
            action=decision.action,
            mode=decision.mode,
            decision_seq=decision.decision_seq,
            decided_at=decision.decided_at,
            dry_run=dry_run,
            objects=objects,
            reason=refusal or decision.reason,
        )
        return OutgoingEvent(
            type=_TYPES[kind],
            id=result_event_id(decision, kind),
            subject=decision.policy,
            data=data.model_dump(mode="json"),
        )

    failed = [o for o in outcomes if o.outcome == "failed"]
    if refusal is not None:
        return [event("failed", outcomes)]
    done = event("applied" if decision.action == "freeze" else "released", outcomes)
    return [done, event("failed", failed)] if failed else [done]


_TYPES: Final = {
    "applied": FREEZE_APPLIED,
    "released": FREEZE_RELEASED,
    "failed": FREEZE_FAILED,
}


def result_event_id(decision: FreezeDecisionData, kind: str) -> str:
    """Deterministic: one result of each kind per decision."""
    return f"{decision.policy}/{decision.scope.key}/{decision.decision_seq}/{kind}"


async def _record(
    store: Store,
    events: list[OutgoingEvent],
    decision: FreezeDecisionData,
    *,
    now: datetime,
) -> None:
    for event in events:
        await store.record_freeze_event(
            FreezeEvent(
                id=event.id,
                type=event.type,
                policy=decision.policy,
                occurred_at=now,
                data=event.data,
                scope=decision.scope.key,
            )
        )


def _summary(outcomes: list[ObjectOutcome], dry_run: bool) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    parts = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    prefix = "dry run, nothing changed: " if dry_run else ""
    return prefix + (parts or "no object in scope")


async def _audit(
    store: Store,
    decision: FreezeDecisionData,
    outcome: str,
    reasons: list[str],
    *,
    now: datetime,
    outcomes: list[ObjectOutcome] | None = None,
) -> None:
    objects = [f"{o.kind} {o.namespace}/{o.name}: {o.outcome}" for o in outcomes or []]
    await store.append_audit(
        AuditEntry(
            at=now,
            actor=ACTOR,
            kind="enforcement",
            subject=decision.policy,
            outcome=outcome,
            inputs={
                "action": decision.action,
                "scope": decision.scope.key,
                "sequence": decision.decision_seq,
                "mode": decision.mode,
                "objects": objects,
            },
            reasons=tuple(reasons),
        )
    )
