"""Catalogue, freeze state, frozen objects, freeze events, overrides and audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sla.clients.store import (
    AuditEntry,
    CatalogueEntry,
    FreezeEvent,
    FreezeState,
    ManualOverride,
    ObjectRef,
    Store,
)
from tests.support.snapshots import budget_snapshot

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHECKOUT = ObjectRef("apps", "Deployment", "shop", "checkout")


def slo_entry(
    *, generation: int = 1, labels: dict[str, str] | None = None
) -> CatalogueEntry:
    return CatalogueEntry(
        kind="SLODefinition",
        namespace="shop",
        name="checkout",
        source="cluster",
        generation=generation,
        document={"spec": {"objective": 99.9, "generation": generation}},
        labels=labels or {"tier": "1"},
    )


async def test_catalogue_upsert_is_a_no_op_when_nothing_changed(store: Store) -> None:
    assert await store.upsert_catalogue(slo_entry()) is True
    assert await store.upsert_catalogue(slo_entry()) is False
    assert await store.upsert_catalogue(slo_entry(generation=2)) is True
    # Kubernetes keeps the generation when only labels change; labels still count.
    assert await store.upsert_catalogue(slo_entry(generation=2, labels={"t": "2"}))

    (stored,) = await store.list_catalogue(kind="SLODefinition", namespace="shop")
    assert (stored.generation, stored.labels) == (2, {"t": "2"})
    assert stored.document == {"spec": {"objective": 99.9, "generation": 2}}


async def test_an_invalid_object_is_kept_with_its_error(store: Store) -> None:
    invalid = CatalogueEntry(
        kind="SLAPolicy",
        namespace="shop",
        name="freeze",
        source="cluster",
        generation=3,
        document={"spec": {"freeze": {}}},
        validation_error="spec.freeze.when: field required",
    )
    await store.upsert_catalogue(invalid)
    await store.upsert_catalogue(slo_entry())

    policies = await store.list_catalogue(kind="SLAPolicy")

    assert [p.validation_error for p in policies] == [
        "spec.freeze.when: field required"
    ]
    assert [e.key for e in await store.list_catalogue()] == [
        "shop/freeze",
        "shop/checkout",
    ]


async def test_catalogue_delete_forgets_the_object(store: Store) -> None:
    await store.upsert_catalogue(slo_entry())

    assert await store.delete_catalogue("SLODefinition", "shop", "checkout") is True
    assert await store.delete_catalogue("SLODefinition", "shop", "checkout") is False
    assert await store.list_catalogue() == []


async def test_an_older_freeze_decision_is_ignored(store: Store) -> None:
    frozen = FreezeState("shop/freeze", "default", "frozen", 5, T0, reason="budget 3%")
    older = FreezeState(
        "shop/freeze", "default", "lifted", 4, T0 - timedelta(minutes=1)
    )
    newer = FreezeState(
        "shop/freeze", "default", "lifted", 6, T0 + timedelta(minutes=1)
    )

    assert await store.apply_freeze_decision(frozen) is True
    assert await store.apply_freeze_decision(older) is False
    assert await store.apply_freeze_decision(frozen) is False
    assert await store.freeze_state("shop/freeze", "default") == frozen
    assert await store.apply_freeze_decision(newer) is True
    assert await store.freeze_states(state="lifted") == [newer]


async def test_an_object_keeps_its_first_prior_state_until_the_last_holder_goes(
    store: Store,
) -> None:
    first = await store.hold_object(
        CHECKOUT, holder="shop/freeze-a", prior_state={"paused": False}, at=T0
    )
    second = await store.hold_object(
        CHECKOUT,
        holder="shop/freeze-b",
        prior_state={"paused": True},  # already frozen by a: not the real prior state
        at=T0 + timedelta(minutes=5),
    )
    again = await store.hold_object(
        CHECKOUT, holder="shop/freeze-a", prior_state={}, at=T0
    )

    assert first.holders == ("shop/freeze-a",)
    assert second.holders == again.holders == ("shop/freeze-a", "shop/freeze-b")
    assert again.prior_state == {"paused": False}
    assert again.frozen_since == T0
    assert [o.ref for o in await store.frozen_objects(holder="shop/freeze-b")] == [
        CHECKOUT
    ]

    after_a = await store.release_object(CHECKOUT, holder="shop/freeze-a")
    assert after_a is not None and after_a.holders == ("shop/freeze-b",)
    assert await store.release_object(CHECKOUT, holder="shop/freeze-a") is None

    after_b = await store.release_object(CHECKOUT, holder="shop/freeze-b")
    assert after_b is not None and after_b.holders == ()
    assert after_b.prior_state == {"paused": False}
    assert await store.frozen_object(CHECKOUT) is None


async def test_a_freeze_event_is_recorded_once(store: Store) -> None:
    event = FreezeEvent(
        id="freeze-shop-freeze-5",
        type="dev.sla.freeze.applied",
        policy="shop/freeze",
        occurred_at=T0,
        data={"objects": [{"name": "checkout", "outcome": "applied"}]},
    )

    assert await store.record_freeze_event(event) is True
    assert await store.record_freeze_event(event) is False
    assert await store.freeze_events(policy="shop/freeze") == [event]


async def test_a_redelivered_event_gets_the_first_answer(store: Store) -> None:
    reply = {"type": "dev.sla.budget.calculated", "id": "shop/checkout@2026"}
    outgoing = [{"type": "dev.sla.slo.evaluate", "id": "shard-1"}]

    assert (await store.claim_event("ping", "tick-1")).status == "claimed"
    assert (await store.claim_event("ping", "tick-1")).status == "busy"
    first = await store.record_event("ping", "tick-1", reply=reply, outgoing=outgoing)
    second = await store.record_event("ping", "tick-1", reply=None, outgoing=[])

    assert second == first
    assert (first.reply, first.outgoing) == (reply, outgoing)
    claim = await store.claim_event("ping", "tick-1")
    assert (claim.status, claim.processed) == ("processed", first)
    assert await store.lookup_event("ping", "tick-1") == first
    assert await store.lookup_event("ping", "tick-2") is None


async def test_an_expired_or_released_claim_can_be_taken_again(store: Store) -> None:
    assert (await store.claim_event("s", "a", lease_seconds=0)).status == "claimed"
    assert (await store.claim_event("s", "a")).status == "claimed"

    assert await store.release_claim("s", "a") is True
    assert (await store.claim_event("s", "a")).status == "claimed"


async def test_an_empty_reply_is_kept_as_none(store: Store) -> None:
    stored = await store.record_event("kafka", "d-1", reply=None, outgoing=[])

    assert (stored.reply, stored.outgoing) == (None, [])


async def test_overrides_replace_each_other_and_expire(store: Store) -> None:
    force = ManualOverride(
        "shop/freeze", "force", T0 + timedelta(hours=1), "incident", "alice"
    )
    lift = ManualOverride(
        "shop/freeze", "lift", T0 + timedelta(hours=2), "P0 fix", "bob"
    )

    await store.set_override(force)
    await store.set_override(lift)

    (active,) = await store.active_overrides(now=T0)
    assert (active.action, active.actor, active.reason) == ("lift", "bob", "P0 fix")
    assert await store.active_overrides(now=T0 + timedelta(hours=3)) == []
    assert await store.clear_override("shop/freeze") is True
    assert await store.active_overrides(now=T0) == []


async def test_the_audit_log_keeps_inputs_and_reasons(store: Store) -> None:
    entry = AuditEntry(
        at=T0,
        actor="policy-evaluator",
        kind="freeze.decision",
        subject="shop/freeze",
        outcome="frozen",
        inputs={"remaining": 0.03, "threshold_percent": 5},
        reasons=("budget remaining 3% < 5%",),
    )
    entry_id = await store.append_audit(entry)
    await store.append_audit(
        AuditEntry(T0, "budget-api", "override", "shop/other", "force")
    )

    (stored,) = await store.audit_log(subject="shop/freeze")

    assert stored.id == entry_id
    assert (stored.inputs, stored.reasons) == (entry.inputs, entry.reasons)
    assert len(await store.audit_log(since=T0, until=T0 + timedelta(seconds=1))) == 2


async def test_a_failed_transaction_writes_nothing(store: Store) -> None:
    decision = FreezeState("shop/freeze", "default", "frozen", 1, T0)

    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.apply_freeze_decision(decision)
            await tx.put_snapshots([budget_snapshot("shop/checkout", T0)])
            await tx.record_event("ping", "tick-1", reply=None, outgoing=[])
            raise RuntimeError("the handler failed after its writes")

    assert await store.freeze_state("shop/freeze", "default") is None
    assert await store.latest_snapshots(["shop/checkout"]) == {}
    assert await store.lookup_event("ping", "tick-1") is None


async def test_related_rows_commit_together(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.apply_freeze_decision(FreezeState("p", "s", "frozen", 1, T0))
        await tx.put_snapshots([budget_snapshot("shop/checkout", T0)])
        await tx.put_snapshots([budget_snapshot("shop/search", T0)])
        await tx.record_event("ping", "tick-1", reply=None, outgoing=[])

    assert await store.freeze_state("p", "s") is not None
    assert sorted(await store.latest_snapshots(["shop/checkout", "shop/search"])) == [
        "shop/checkout",
        "shop/search",
    ]
