"""freeze-enforcer through its ASGI app: real CloudEvents and PostgreSQL, and the
Kubernetes API double reached by the real client through a kubeconfig.

The cluster holds Deployments ``web-0`` and ``web-1`` (``tier=web``) and ``batch``
(``tier=batch``) in ``shop``; decisions come from the policy ``shop/freeze``,
scoped to the ``tier=web`` Deployments of ``shop``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sla.clients.store import CatalogueEntry, Store
from tests.support.budget_api import AUTH, TOKEN, open_api
from tests.support.functions import (
    RecordingSink,
    binary_event,
    client_for,
    function_env,
    load_function,
    structured_event,
)
from tests.support.kube import KubeAPI, workload

SCOPE = "shop|Deployment|tier=web"
EVALUATOR = "/sla/policy-evaluator"
DECIDED = "2026-03-02T10:00:00Z"


def write_kubeconfig(path: Path, url: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "double", "cluster": {"server": url}}],
        "users": [{"name": "freeze-enforcer", "user": {"token": "enforcer"}}],
        "contexts": [
            {
                "name": "double",
                "context": {"cluster": "double", "user": "freeze-enforcer"},
            }
        ],
        "current-context": "double",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def serve(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    sink: RecordingSink,
) -> AsyncIterator[Callable[..., Any]]:
    """Loads freeze-enforcer with the test's settings (plus any given)."""
    modules: list[Any] = []
    # Tests run outside any cluster; make sure the process agrees.
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    def start(**settings: str) -> Any:
        function_env(
            monkeypatch,
            database_url=database_url,
            schema=schema_name,
            K_SINK=sink.url,
            **settings,
        )
        module, app = load_function("freeze-enforcer")
        modules.append(module)
        return app

    yield start
    for module in modules:
        await module.function.aclose()


@pytest.fixture
def cluster(kube_api: KubeAPI) -> KubeAPI:
    for name, tier in (("web-0", "web"), ("web-1", "web"), ("batch", "batch")):
        kube_api.seed(workload("Deployment", name, "shop", labels={"tier": tier}))
    return kube_api


@pytest.fixture
def enforcer(serve: Callable[..., Any], cluster: KubeAPI, tmp_path: Path) -> Any:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", cluster.url)
    return serve(SLA_KUBECONFIG=str(kubeconfig))


def decision(action: str = "freeze", seq: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "policy": "shop/freeze",
        "scope": {
            "key": SCOPE,
            "namespaces": ["shop"],
            "kinds": ["Deployment"],
            "selector": "tier=web",
        },
        "action": action,
        "mode": "annotate",
        "dry_run": False,
        "reason": "budget spent",
        "reasons": ["budget spent"],
        "decision_seq": seq,
        "decided_at": DECIDED,
        **changes,
    }


def decision_event(
    data: dict[str, Any], *, source: str = EVALUATOR, structured: bool = False
) -> tuple[dict[str, str], bytes]:
    kind = "requested" if data["action"] == "freeze" else "lifted"
    write = structured_event if structured else binary_event
    return write(
        f"dev.sla.freeze.{kind}",
        source=source,
        id=f"{data['policy']}/{data['scope']['key']}/{data['decision_seq']}",
        data=data,
    )


async def post(app: Any, event: tuple[dict[str, str], bytes]) -> Any:
    headers, body = event
    async with client_for(app) as client:
        return await client.post("/", headers=headers, content=body)


def annotations(kube_api: KubeAPI, name: str) -> dict[str, str]:
    found = kube_api.get("Deployment", "shop", name)
    assert found is not None
    return dict(found["metadata"].get("annotations") or {})


def outcomes(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o["name"], o["outcome"]) for o in data["objects"]]


def patches(kube_api: KubeAPI) -> list[str]:
    return [
        r.path.rsplit("/", 1)[-1]
        for r in kube_api.requests
        if r.method == "PATCH" and "/deployments/" in r.path
    ]


async def test_a_requested_freeze_annotates_the_deployments_in_scope(
    enforcer: Any, cluster: KubeAPI
) -> None:
    started = datetime.now(UTC).replace(microsecond=0)

    answer = await post(enforcer, decision_event(decision()))

    assert answer.status_code == 200
    assert answer.headers["ce-type"] == "dev.sla.freeze.applied"
    assert answer.headers["ce-id"] == f"shop/freeze/{SCOPE}/1/applied"
    assert answer.headers["ce-source"] == "/sla/freeze-enforcer"
    data = answer.json()
    assert (data["policy"], data["action"], data["decision_seq"]) == (
        "shop/freeze",
        "freeze",
        1,
    )
    assert outcomes(data) == [("web-0", "applied"), ("web-1", "applied")]
    for name in ("web-0", "web-1"):
        held = annotations(cluster, name)
        since = datetime.fromisoformat(
            held.pop("sla.dev/frozen-since").replace("Z", "+00:00")
        )
        assert since >= started
        assert held == {
            "sla.dev/frozen": "true",
            "sla.dev/frozen-by": "shop/freeze",
            "sla.dev/freeze-reason": "budget spent",
        }
    assert annotations(cluster, "batch") == {}


async def test_a_lift_releases_what_the_freeze_held(
    enforcer: Any, cluster: KubeAPI, store: Store
) -> None:
    await post(enforcer, decision_event(decision()))

    answer = await post(enforcer, decision_event(decision("lift", 2)))

    assert answer.status_code == 200
    assert answer.headers["ce-type"] == "dev.sla.freeze.released"
    assert answer.headers["ce-id"] == f"shop/freeze/{SCOPE}/2/released"
    assert outcomes(answer.json()) == [("web-0", "released"), ("web-1", "released")]
    assert annotations(cluster, "web-0") == annotations(cluster, "web-1") == {}
    assert await store.frozen_objects() == []


async def test_the_same_decision_twice_patches_once_and_answers_the_same(
    enforcer: Any, cluster: KubeAPI
) -> None:
    """Binary first, then the same event structured."""
    first = await post(enforcer, decision_event(decision()))
    again = await post(enforcer, decision_event(decision(), structured=True))

    assert again.status_code == first.status_code == 200
    assert again.content == first.content
    assert again.headers["ce-id"] == first.headers["ce-id"]
    assert sorted(patches(cluster)) == ["web-0", "web-1"]


async def test_a_freeze_arriving_after_its_lift_changes_nothing(
    enforcer: Any, cluster: KubeAPI, store: Store
) -> None:
    """Events are not ordered: the lift (2) is enforced before the freeze (1)."""
    lifted = await post(enforcer, decision_event(decision("lift", 2)))

    late = await post(enforcer, decision_event(decision()))

    assert lifted.headers["ce-type"] == "dev.sla.freeze.released"
    assert (late.status_code, late.content) == (202, b"")
    assert annotations(cluster, "web-0") == annotations(cluster, "web-1") == {}
    assert patches(cluster) == []
    audit = await store.audit_log(kind="enforcement")
    assert [entry.outcome for entry in sorted(audit, key=lambda e: e.id or 0)] == [
        "lift",
        "ignored",
    ]


async def test_decisions_from_other_sources_are_refused(enforcer: Any) -> None:
    answer = await post(enforcer, decision_event(decision(), source="/sla/intruder"))

    assert answer.status_code == 400
    assert answer.json()["field"] == "source"


async def test_a_delivery_that_failed_half_way_is_finished_by_the_redelivery(
    enforcer: Any, cluster: KubeAPI, store: Store
) -> None:
    """web-0 is held, then the API server fails on web-1: 503, and the retry
    finishes the decision without holding web-0 twice."""
    cluster.fail_next("patch", "deployments", status=500, name="web-1")

    failed = await post(enforcer, decision_event(decision()))

    assert failed.status_code == 503
    assert failed.headers["ce-type"] == "dev.sla.event.rejected"
    assert failed.json()["retryable"] is True
    assert annotations(cluster, "web-0")["sla.dev/frozen-by"] == "shop/freeze"
    assert "sla.dev/frozen" not in annotations(cluster, "web-1")

    retried = await post(enforcer, decision_event(decision()))

    assert retried.status_code == 200
    assert outcomes(retried.json()) == [("web-0", "applied"), ("web-1", "applied")]
    for name in ("web-0", "web-1"):
        assert annotations(cluster, name)["sla.dev/frozen-by"] == "shop/freeze"
    held = await store.frozen_objects(holder="shop/freeze")
    assert sorted(h.ref.name for h in held) == ["web-0", "web-1"]


async def test_a_forbidden_patch_is_reported_as_freeze_failed(
    enforcer: Any, cluster: KubeAPI, sink: RecordingSink
) -> None:
    """Two events (applied, failed): posted to the sink, the answer empty."""
    cluster.add_user("enforcer", "system:serviceaccount:sla-system:freeze-enforcer")
    cluster.deny("patch", "deployments", group="apps", token="enforcer")

    answer = await post(enforcer, decision_event(decision()))

    assert (answer.status_code, answer.content) == (202, b"")
    events = {event.type: event for event in sink.events()}
    assert sorted(events) == ["dev.sla.freeze.applied", "dev.sla.freeze.failed"]
    failed = events["dev.sla.freeze.failed"]
    assert failed.id == f"shop/freeze/{SCOPE}/1/failed"
    objects = failed.data()["objects"]
    assert [(o["name"], o["outcome"], o["verb"], o["status"]) for o in objects] == [
        ("web-0", "failed", "patch", 403),
        ("web-1", "failed", "patch", 403),
    ]
    assert annotations(cluster, "web-0") == {}


async def test_without_a_cluster_the_decision_is_a_recorded_dry_run(
    serve: Callable[..., Any], cluster: KubeAPI, store: Store
) -> None:
    app = serve()  # no SLA_KUBECONFIG, not in a pod

    answer = await post(app, decision_event(decision()))

    assert answer.status_code == 200
    assert answer.headers["ce-type"] == "dev.sla.freeze.applied"
    assert answer.json()["dry_run"] is True
    assert cluster.requests == []
    (audited,) = await store.audit_log(kind="enforcement")
    assert (audited.subject, audited.outcome) == ("shop/freeze", "dry-run")


async def test_enforcement_switched_to_dry_run_touches_nothing(
    serve: Callable[..., Any], cluster: KubeAPI, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", cluster.url)
    app = serve(SLA_KUBECONFIG=str(kubeconfig), SLA_ENFORCEMENT="dry-run")

    answer = await post(app, decision_event(decision()))

    assert answer.json()["dry_run"] is True
    assert outcomes(answer.json()) == [("web-0", "applied"), ("web-1", "applied")]
    assert patches(cluster) == []


async def test_a_scope_over_the_object_limit_is_refused_whole(
    serve: Callable[..., Any], cluster: KubeAPI, tmp_path: Path
) -> None:
    """Two objects in scope, one allowed: freeze.failed, nothing patched."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", cluster.url)
    app = serve(SLA_KUBECONFIG=str(kubeconfig), SLA_ENFORCEMENT_MAX_OBJECTS="1")

    answer = await post(app, decision_event(decision()))

    assert answer.headers["ce-type"] == "dev.sla.freeze.failed"
    assert "SLA_ENFORCEMENT_MAX_OBJECTS" in answer.json()["reason"]
    assert patches(cluster) == []


async def test_a_type_that_contradicts_its_action_is_refused(enforcer: Any) -> None:
    event = binary_event(
        "dev.sla.freeze.lifted", source=EVALUATOR, id="bad-1", data=decision()
    )

    answer = await post(enforcer, event)

    assert answer.status_code == 400
    assert answer.json()["field"] == "data.action"


async def test_an_override_posted_by_budget_api_is_enforced(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    sink: RecordingSink,
    enforcer: Any,
    cluster: KubeAPI,
) -> None:
    """budget-api forces a freeze; the event it posts to K_SINK is delivered to
    freeze-enforcer as the broker would."""
    await store.upsert_catalogue(
        CatalogueEntry(
            kind="SLAPolicy",
            namespace="shop",
            name="freeze",
            source="cluster",
            generation=1,
            document={
                "spec": {
                    "slos": {"names": ["checkout"]},
                    "freeze": {"when": [{"budgetRemainingBelow": 20}]},
                    "lift": {"budgetRemainingAbove": 50, "holdFor": "30m"},
                    "scope": {
                        "selector": {"matchLabels": {"tier": "web"}},
                        "kinds": ["Deployment"],
                    },
                }
            },
        )
    )
    async with open_api(
        monkeypatch,
        database_url=database_url,
        schema=schema_name,
        SLA_API_TOKEN=TOKEN,
        K_SINK=sink.url,
    ) as (api, _):
        await force_freeze(api)
    (posted,) = sink.events()
    assert posted.headers["ce-source"] == "/sla/budget-api"
    headers = {k: v for k, v in posted.headers.items() if k.startswith("ce-")}
    headers["content-type"] = posted.headers["content-type"]

    answer = await post(enforcer, (headers, posted.body))

    assert answer.status_code == 200
    assert answer.headers["ce-type"] == "dev.sla.freeze.applied"
    assert outcomes(answer.json()) == [("web-0", "applied"), ("web-1", "applied")]
    assert annotations(cluster, "web-0")["sla.dev/frozen-by"] == "shop/freeze"


async def force_freeze(api: httpx.AsyncClient) -> None:
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = await api.post(
        "/freezes/shop/freeze/override",
        json={
            "action": "force",
            "expires_at": expires,
            "reason": "release drill",
            "actor": "alice",
        },
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    assert response.json()["events_posted"] is True
