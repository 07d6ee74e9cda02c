"""The policy evaluator against the real PostgreSQL store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sla.clients.store import CatalogueEntry, Store
from sla.model.freeze import Deployment
from sla.model.snapshot import BudgetSnapshot
from sla.runtime.metrics import FREEZE_BUCKETS, FREEZE_DURATION, le
from sla.services.policy_evaluation import (
    EvaluationResult,
    check_deployment,
    clear_override,
    evaluate_snapshot,
    set_override,
)
from tests.support.policy_snapshots import T0, A, snap

SCOPE = "shop|Deployment,StatefulSet|tier=web"


def policy_entry(**spec_changes: Any) -> CatalogueEntry:
    spec: dict[str, Any] = {
        "slos": {"selector": {"matchLabels": {"team": "shop"}}},
        "freeze": {"when": [{"budgetRemainingBelow": 20}]},
        "lift": {"budgetRemainingAbove": 50, "holdFor": "30m"},
        "scope": {
            "selector": {"matchLabels": {"tier": "web"}},
            "kinds": ["Deployment", "StatefulSet"],
        },
    }
    spec.update(spec_changes)
    return CatalogueEntry(
        kind="SLAPolicy",
        namespace="shop",
        name="freeze",
        source="cluster",
        generation=1,
        document={"spec": spec},
    )


def slo_entry(name: str, labels: dict[str, str]) -> CatalogueEntry:
    return CatalogueEntry(
        kind="SLODefinition",
        namespace="shop",
        name=name,
        source="cluster",
        generation=1,
        document={"spec": {"objective": 99}},
        labels=labels,
    )


async def seeded(store: Store) -> None:
    await store.upsert_catalogue(policy_entry())
    await store.upsert_catalogue(slo_entry("checkout", {"team": "shop"}))
    await store.upsert_catalogue(slo_entry("search", {"team": "other"}))


async def arrive(store: Store, snapshot: BudgetSnapshot) -> list[str]:
    """Store the snapshot as sli-calculator does, then hand its event over."""
    await store.put_snapshots([snapshot])
    at = snapshot.evaluated_at + timedelta(seconds=20)
    result = await evaluate_snapshot(snapshot, store=store, now=at)
    return [f"{e.type} {e.id}" for e in result.events]


async def test_exhaustion_requests_a_freeze_and_recovery_lifts_it(store: Store) -> None:
    await seeded(store)
    assert await arrive(store, snap(A, 0, 0.9)) == []
    assert await arrive(store, snap(A, 1, 0.1)) == [
        f"dev.sla.freeze.requested shop/freeze/{SCOPE}/2"
    ]
    assert await arrive(store, snap(A, 2, 0.8)) == []
    assert await arrive(store, snap(A, 32, 0.8)) == [
        f"dev.sla.freeze.lifted shop/freeze/{SCOPE}/4"
    ]

    state = await store.freeze_state("shop/freeze", SCOPE)
    assert state is not None
    assert (state.state, state.decision_seq) == ("lifted", 4)
    audit = await store.audit_log(subject="shop/freeze", kind="freeze-decision")
    assert [entry.outcome for entry in audit] == [
        "no-change",
        "freeze",
        "no-change",
        "lift",
    ]
    assert audit[1].reasons == (
        "shop/checkout: budget remaining 10% is below the freeze level 20%",
    )
    assert audit[1].inputs["snapshots"][0] == {
        "slo": "shop/checkout",
        "evaluated_at": "2026-03-02T10:01:00Z",
        "status": "healthy",
        "remaining": 0.1,
        "firing": [],
    }


async def force_freeze(store: Store) -> EvaluationResult:
    """Alice forces a freeze at minute 1, for two hours."""
    return await set_override(
        store=store,
        policy="shop/freeze",
        action="force",
        expires_at=T0 + timedelta(hours=2),
        reason="incident 7",
        actor="alice",
        now=T0 + timedelta(minutes=1),
    )


async def freeze_durations(store: Store) -> dict[str, float]:
    """The stored series of the freeze-duration histogram, by bucket (and sum)."""
    prefix = FREEZE_DURATION.name
    return {
        counter.labels.get("le", "sum"): counter.value
        for counter in await store.read_counters()
        if counter.metric.startswith(prefix)
    }


def one_observation(seconds: float) -> dict[str, float]:
    buckets = {le(bound): 1.0 for bound in FREEZE_BUCKETS if seconds <= bound}
    return {**buckets, "+Inf": 1.0, "sum": seconds}


async def test_a_lift_observes_how_long_the_freeze_held_once(store: Store) -> None:
    await seeded(store)
    await arrive(store, snap(A, 1, 0.1))
    assert await freeze_durations(store) == {}
    await arrive(store, snap(A, 2, 0.8))
    lifted = snap(A, 32, 0.8)
    await arrive(store, lifted)
    # Frozen at minute 1, lifted at minute 32 (each decided 20 s after its
    # snapshot): 31 minutes, inside the 3600 s bucket, above the 1800 s one.
    held = 31 * 60

    assert await freeze_durations(store) == one_observation(held)
    # The same snapshot again decides nothing new and observes nothing.
    await evaluate_snapshot(lifted, store=store, now=T0 + timedelta(minutes=40))
    assert await freeze_durations(store) == one_observation(held)


async def test_clearing_a_forced_freeze_observes_its_duration(store: Store) -> None:
    await seeded(store)
    await arrive(store, snap(A, 0, 0.9))
    await force_freeze(store)
    await clear_override(
        store=store,
        policy="shop/freeze",
        actor="alice",
        reason="incident over",
        now=T0 + timedelta(minutes=9),
    )

    assert await freeze_durations(store) == one_observation(8 * 60)


async def test_the_freeze_event_carries_scope_sequence_and_reason(store: Store) -> None:
    await seeded(store)
    await store.put_snapshots([snap(A, 0, 0.0)])
    result = await evaluate_snapshot(snap(A, 0, 0.0), store=store, now=T0)
    requested = result.events[0]
    assert requested.data == {
        "version": 1,
        "policy": "shop/freeze",
        "scope": {
            "key": SCOPE,
            "namespaces": ["shop"],
            "kinds": ["Deployment", "StatefulSet"],
            "selector": "tier=web",
        },
        "action": "freeze",
        "mode": "annotate",
        "dry_run": False,
        "reason": "shop/checkout: budget remaining 0% is below the freeze level 20%",
        "reasons": ["shop/checkout: budget remaining 0% is below the freeze level 20%"],
        "decision_seq": 1,
        "decided_at": "2026-03-02T10:00:00Z",
    }


async def test_an_slo_no_policy_selects_decides_nothing(store: Store) -> None:
    await seeded(store)
    result = await evaluate_snapshot(snap("shop/search", 0, 0.0), store=store, now=T0)
    assert result.decisions == []


async def test_a_late_snapshot_is_audited_as_ignored(store: Store) -> None:
    await seeded(store)
    await arrive(store, snap(A, 10, 0.9))
    assert await arrive(store, snap(A, 5, 0.0)) == []
    audit = await store.audit_log(subject="shop/freeze", kind="freeze-decision")
    in_arrival_order = sorted(audit, key=lambda entry: entry.id or 0)
    assert [entry.outcome for entry in in_arrival_order] == ["no-change", "ignored"]
    state = await store.freeze_state("shop/freeze", SCOPE)
    assert state is not None and state.decision_seq == 1


async def test_entering_exhausted_emits_one_violation(store: Store) -> None:
    await seeded(store)
    await arrive(store, snap(A, 0, 0.5))
    spent = snap(A, 1, -0.1).model_copy(update={"status": "exhausted"})
    events = await arrive(store, spent)
    assert "dev.sla.slo.violated violated:shop/checkout@2026-03-02T10:01:00Z" in events
    still = snap(A, 2, -0.2).model_copy(update={"status": "exhausted"})
    assert not any("violated" in e for e in await arrive(store, still))


async def test_overrides_force_and_clear_with_audit(store: Store) -> None:
    await seeded(store)
    await arrive(store, snap(A, 0, 0.9))
    forced = await force_freeze(store)
    assert [e.type for e in forced.events] == ["dev.sla.freeze.requested"]
    cleared = await clear_override(
        store=store,
        policy="shop/freeze",
        actor="alice",
        reason="incident over",
        now=T0 + timedelta(minutes=2),
    )
    assert [e.type for e in cleared.events] == ["dev.sla.freeze.lifted"]
    overrides = await store.audit_log(subject="shop/freeze", kind="override")
    assert [(a.actor, a.outcome) for a in overrides] == [
        ("alice", "set-force"),
        ("alice", "cleared"),
    ]


async def test_a_deployment_into_a_frozen_scope_is_breached(store: Store) -> None:
    await seeded(store)
    await arrive(store, snap(A, 0, 0.0))
    deployment = Deployment(
        namespace="shop",
        kind="Deployment",
        name="web",
        version="v2",
        actor="ci",
        time=T0 + timedelta(minutes=5),
        labels={"tier": "web"},
    )
    result = await check_deployment(deployment, store=store, now=T0)
    assert [e.type for e in result.events] == ["dev.sla.freeze.breached"]
    assert result.events[0].data["policy"] == "shop/freeze"
    exempt = deployment.model_copy(update={"exemption": "security fix"})
    assert (await check_deployment(exempt, store=store, now=T0)).events == []
    audit = await store.audit_log(kind="deployment")
    assert [a.outcome for a in audit] == ["breached", "exempt"]
