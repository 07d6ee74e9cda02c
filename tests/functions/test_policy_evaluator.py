"""policy-evaluator through its ASGI app: real CloudEvents, PostgreSQL and a sink.

The policy ``shop/freeze`` selects SLOs labelled ``team=shop`` (``shop/checkout``),
freezes below 20 % of the budget remaining and lifts above 50 % once that has held
for 30 minutes of snapshot time; its scope is the ``tier=web`` Deployments and
StatefulSets of ``shop``. Snapshots are ``shop/checkout`` at T0 + minutes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sla.clients.store import CatalogueEntry, Store
from sla.model.snapshot import BudgetSnapshot
from tests.support.functions import (
    RecordingSink,
    binary_event,
    client_for,
    function_env,
    load_function,
    structured_event,
)
from tests.support.policy_snapshots import A, snap

SCOPE = "shop|Deployment,StatefulSet|tier=web"
CALCULATOR = "/sla/sli-calculator"
PIPELINE = "https://ci.example/pipelines/checkout/runs/42"
KAFKA = "/apis/v1/namespaces/sla-system/kafkasources/sla-deployments#ci.deployments"
FREEZE_REASON = "shop/checkout: budget remaining 10% is below the freeze level 20%"


def policy_entry(name: str = "freeze", **scope: Any) -> CatalogueEntry:
    spec = {
        "slos": {"selector": {"matchLabels": {"team": "shop"}}},
        "freeze": {"when": [{"budgetRemainingBelow": 20}]},
        "lift": {"budgetRemainingAbove": 50, "holdFor": "30m"},
        "scope": scope
        or {
            "selector": {"matchLabels": {"tier": "web"}},
            "kinds": ["Deployment", "StatefulSet"],
        },
    }
    return CatalogueEntry(
        kind="SLAPolicy",
        namespace="shop",
        name=name,
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


@pytest.fixture
async def evaluator(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    sink: RecordingSink,
) -> AsyncIterator[Any]:
    await store.upsert_catalogue(policy_entry())
    await store.upsert_catalogue(slo_entry("checkout", {"team": "shop"}))
    function_env(
        monkeypatch, database_url=database_url, schema=schema_name, K_SINK=sink.url
    )
    module, app = load_function("policy-evaluator")
    yield app
    await module.function.aclose()


async def post(app: Any, event: tuple[dict[str, str], bytes]) -> Any:
    headers, body = event
    async with client_for(app) as client:
        return await client.post("/", headers=headers, content=body)


def budget_event(
    snapshot: BudgetSnapshot, *, structured: bool = False
) -> tuple[dict[str, str], bytes]:
    write = structured_event if structured else binary_event
    return write(
        "dev.sla.budget.calculated",
        source=CALCULATOR,
        id=snapshot.snapshot_id,
        data=snapshot.model_dump(mode="json"),
    )


async def arrive(
    app: Any, store: Store, snapshot: BudgetSnapshot, **options: Any
) -> Any:
    """Store the snapshot as sli-calculator does, then deliver its event."""
    await store.put_snapshots([snapshot])
    return await post(app, budget_event(snapshot, **options))


def deployment(**changes: Any) -> dict[str, Any]:
    return {
        "namespace": "shop",
        "kind": "Deployment",
        "name": "web",
        "version": "v2",
        "actor": "ci-bot",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exemption": None,
        "labels": {"tier": "web"},
        **changes,
    }


async def decisions(store: Store) -> list[str]:
    audit = await store.audit_log(subject="shop/freeze", kind="freeze-decision")
    return [entry.outcome for entry in sorted(audit, key=lambda e: e.id or 0)]


def decided_at(data: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(data["decided_at"].replace("Z", "+00:00"))


async def test_a_run_of_budgets_freezes_then_lifts(
    evaluator: Any, store: Store
) -> None:
    """0.9 left: nothing. 0.1 < 0.2: freeze (sequence 2). 0.8 > 0.5 from minute 2,
    still 0.8 at minute 32: recovery held 32 − 2 = 30 min = holdFor, lift (4)."""
    started = datetime.now(UTC).replace(microsecond=0)

    quiet = await arrive(evaluator, store, snap(A, 0, 0.9))
    frozen = await arrive(evaluator, store, snap(A, 1, 0.1))
    waiting = await arrive(evaluator, store, snap(A, 2, 0.8))
    lifted = await arrive(evaluator, store, snap(A, 32, 0.8))

    assert (quiet.status_code, quiet.content) == (202, b"")
    assert (waiting.status_code, waiting.content) == (202, b"")
    assert frozen.status_code == 200
    assert frozen.headers["ce-type"] == "dev.sla.freeze.requested"
    assert frozen.headers["ce-id"] == f"shop/freeze/{SCOPE}/2"
    assert frozen.headers["ce-source"] == "/sla/policy-evaluator"
    assert frozen.headers["ce-subject"] == "shop/freeze"
    assert frozen.headers["content-type"] == "application/json"
    data = frozen.json()
    assert decided_at(data) >= started
    assert {k: v for k, v in data.items() if k != "decided_at"} == {
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
        "reason": FREEZE_REASON,
        "reasons": [FREEZE_REASON],
        "decision_seq": 2,
    }
    assert lifted.status_code == 200
    assert lifted.headers["ce-type"] == "dev.sla.freeze.lifted"
    assert lifted.headers["ce-id"] == f"shop/freeze/{SCOPE}/4"
    assert (lifted.json()["action"], lifted.json()["decision_seq"]) == ("lift", 4)
    assert await decisions(store) == ["no-change", "freeze", "no-change", "lift"]
    state = await store.freeze_state("shop/freeze", SCOPE)
    assert state is not None and (state.state, state.decision_seq) == ("lifted", 4)


async def test_the_same_event_twice_decides_once_and_answers_the_same(
    evaluator: Any, store: Store
) -> None:
    """Delivered binary, then again structured (same source and id)."""
    await arrive(evaluator, store, snap(A, 0, 0.9))
    first = await arrive(evaluator, store, snap(A, 1, 0.1))

    again = await arrive(evaluator, store, snap(A, 1, 0.1), structured=True)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["ce-id"] == first.headers["ce-id"] == f"shop/freeze/{SCOPE}/2"
    assert again.content == first.content
    assert await decisions(store) == ["no-change", "freeze"]
    state = await store.freeze_state("shop/freeze", SCOPE)
    assert state is not None and state.decision_seq == 2


async def test_a_snapshot_older_than_one_seen_changes_nothing(
    evaluator: Any, store: Store
) -> None:
    """Minute 10 reads 0.9; minute 5's 0.0 arrives after it and is ignored."""
    await arrive(evaluator, store, snap(A, 10, 0.9))

    late = await arrive(evaluator, store, snap(A, 5, 0.0))

    assert (late.status_code, late.content) == (202, b"")
    assert await decisions(store) == ["no-change", "ignored"]
    state = await store.freeze_state("shop/freeze", SCOPE)
    assert state is not None and (state.state, state.decision_seq) == ("lifted", 1)


async def test_several_events_go_to_the_sink_and_the_answer_is_empty(
    evaluator: Any, store: Store, sink: RecordingSink
) -> None:
    """Exhausted (−0.1 left) after healthy: a freeze and a violation."""
    await arrive(evaluator, store, snap(A, 0, 0.5))
    spent = snap(A, 1, -0.1).model_copy(update={"status": "exhausted"})

    answer = await arrive(evaluator, store, spent)

    assert (answer.status_code, answer.content) == (202, b"")
    events = {event.id: event for event in sink.events()}
    violation = "violated:shop/checkout@2026-03-02T10:01:00Z"
    assert sorted(events) == [f"shop/freeze/{SCOPE}/2", violation]
    assert events[violation].type == "dev.sla.slo.violated"
    assert events[violation].data()["reason"] == (
        "shop/checkout: the error budget is exhausted (remaining -0.1)"
    )
    assert events[f"shop/freeze/{SCOPE}/2"].type == "dev.sla.freeze.requested"


async def test_a_failure_half_way_leaves_nothing_and_the_redelivery_decides_once(
    evaluator: Any, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails after the decision was written, before the answer is
    recorded: the decision rolls back with it, the broker's retry decides anew."""
    from sla.errors import StoreUnavailable

    await arrive(evaluator, store, snap(A, 0, 0.9))
    original = Store.record_event
    failures = iter([StoreUnavailable("connection lost")])

    async def fail_once(self: Store, *args: Any, **kwargs: Any) -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "record_event", fail_once)

    failed = await arrive(evaluator, store, snap(A, 1, 0.1))
    assert failed.status_code == 503
    assert failed.headers["ce-type"] == "dev.sla.event.rejected"
    assert await decisions(store) == ["no-change"]

    retried = await arrive(evaluator, store, snap(A, 1, 0.1))

    assert retried.status_code == 200
    assert retried.headers["ce-id"] == f"shop/freeze/{SCOPE}/2"
    assert await decisions(store) == ["no-change", "freeze"]


async def freeze(app: Any, store: Store) -> None:
    await arrive(app, store, snap(A, 0, 0.9))
    answer = await arrive(app, store, snap(A, 1, 0.1))
    assert answer.status_code == 200


async def test_a_deployment_during_a_freeze_is_a_breach(
    evaluator: Any, store: Store
) -> None:
    await freeze(evaluator, store)
    release = deployment()
    event = binary_event(
        "dev.sla.deployment.started", source=PIPELINE, id="run-42", data=release
    )

    answer = await post(evaluator, event)

    assert answer.status_code == 200
    assert answer.headers["ce-type"] == "dev.sla.freeze.breached"
    assert answer.headers["ce-id"] == (
        f"breached:shop/Deployment/web:v2@{release['time']}:shop/freeze"
    )
    data = answer.json()
    assert (data["policy"], data["scope"]) == ("shop/freeze", SCOPE)
    assert data["deployment"]["name"] == "web"
    assert data["reason"] == (
        "shop/Deployment/web deployed during the freeze of shop/freeze"
    )
    (audited,) = await store.audit_log(kind="deployment")
    assert (audited.subject, audited.outcome) == ("shop/Deployment/web", "breached")


async def test_an_exempt_deployment_is_audited_as_exempt(
    evaluator: Any, store: Store
) -> None:
    await freeze(evaluator, store)
    release = deployment(exemption="P0: payment outage fix")
    event = structured_event(
        "dev.sla.deployment.started", source=PIPELINE, id="run-43", data=release
    )

    answer = await post(evaluator, event)

    assert (answer.status_code, answer.content) == (202, b"")
    (audited,) = await store.audit_log(kind="deployment")
    assert audited.outcome == "exempt"
    assert "P0: payment outage fix" in audited.reasons[0]


async def test_a_deployment_without_a_freeze_is_allowed(
    evaluator: Any, store: Store
) -> None:
    event = binary_event(
        "dev.sla.deployment.started", source=PIPELINE, id="run-1", data=deployment()
    )

    answer = await post(evaluator, event)

    assert answer.status_code == 202
    (audited,) = await store.audit_log(kind="deployment")
    assert audited.outcome == "allowed"


async def test_a_deployment_from_the_kafka_source_is_checked(
    evaluator: Any, store: Store
) -> None:
    """A KafkaSource record: the JSON value is the deployment, extra fields kept
    out; a repeat of the record (same partition and offset) audits nothing more."""
    await freeze(evaluator, store)
    record = {**deployment(), "pipeline": "github-actions"}
    event = binary_event(
        "dev.knative.kafka.event", source=KAFKA, id="partition:0/offset:7", data=record
    )

    answer = await post(evaluator, event)
    again = await post(evaluator, event)

    assert answer.status_code == again.status_code == 200
    assert answer.headers["ce-type"] == "dev.sla.freeze.breached"
    assert again.content == answer.content
    assert len(await store.audit_log(kind="deployment")) == 1


@pytest.mark.parametrize(
    ("event_type", "source", "field"),
    [
        pytest.param(
            "dev.knative.kafka.event",
            "/apis/v1/namespaces/sla-system/kafkasources/other#ci.deployments",
            "source",
            id="kafka-source-not-sla-deployments",
        ),
        pytest.param(
            "dev.sla.budget.calculated", "/sla/budget-api", "source", id="budget-api"
        ),
        pytest.param("dev.sla.freeze.requested", CALCULATOR, "type", id="other-type"),
    ],
)
async def test_events_of_other_sources_or_types_are_refused(
    evaluator: Any, event_type: str, source: str, field: str
) -> None:
    event = binary_event(event_type, source=source, id="x-1", data=deployment())

    answer = await post(evaluator, event)

    assert answer.status_code == 400
    assert answer.headers["ce-type"] == "dev.sla.event.rejected"
    assert answer.json()["field"] == field


async def test_a_deployment_missing_a_field_is_refused(evaluator: Any) -> None:
    release = deployment()
    del release["actor"]
    event = binary_event(
        "dev.sla.deployment.started", source=PIPELINE, id="run-2", data=release
    )

    answer = await post(evaluator, event)

    assert answer.status_code == 400
    assert answer.json()["field"] == "data.actor"


async def test_two_policies_deciding_post_both_events(
    evaluator: Any, store: Store, sink: RecordingSink
) -> None:
    """A second policy over the same SLOs, scoping StatefulSets only."""
    await store.upsert_catalogue(
        policy_entry("gate", selector={}, kinds=["StatefulSet"])
    )
    await arrive(evaluator, store, snap(A, 0, 0.9))

    answer = await arrive(evaluator, store, snap(A, 1, 0.1))

    assert answer.status_code == 202
    assert sorted(sink.ids()) == [
        "shop/freeze/shop|Deployment,StatefulSet|tier=web/2",
        "shop/gate/shop|StatefulSet|/2",
    ]
