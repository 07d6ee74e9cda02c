"""The freeze-enforcer against the real store and the Kubernetes API double."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sla.clients.kube import DEPLOYMENT, KubeClient
from sla.clients.store import Store
from sla.errors import KubeUnavailable
from sla.model.freeze import FreezeDecisionData, ScopeRef
from sla.services.enforcement import EnforcementSettings, enforce
from tests.support.kube import KubeAPI, workload

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ON = EnforcementSettings()


@pytest.fixture
def kube(kube_api: KubeAPI) -> Iterator[KubeClient]:
    with KubeClient.from_url(kube_api.url) as client:
        yield client


def decision(
    action: str = "freeze",
    seq: int = 1,
    *,
    policy: str = "shop/freeze",
    kinds: tuple[str, ...] = ("Deployment",),
    mode: str = "annotate",
    selector: str = "tier=web",
    namespaces: tuple[str, ...] = ("shop",),
    dry_run: bool = False,
) -> FreezeDecisionData:
    scope = ScopeRef(
        key=f"{','.join(namespaces)}|{','.join(kinds)}|{selector}",
        namespaces=list(namespaces),
        kinds=list(kinds),
        selector=selector,
    )
    return FreezeDecisionData.model_validate(
        {
            "policy": policy,
            "scope": scope,
            "action": action,
            "mode": mode,
            "dry_run": dry_run,
            "reason": "budget spent",
            "decision_seq": seq,
            "decided_at": NOW + timedelta(minutes=seq),
        }
    )


def seed_web(kube_api: KubeAPI, count: int = 1, **extra: Any) -> None:
    for index in range(count):
        kube_api.seed(
            workload(
                "Deployment", f"web-{index}", "shop", labels={"tier": "web"}, **extra
            )
        )


def annotations(kube_api: KubeAPI, kind: str, name: str, ns: str = "shop") -> Any:
    found = kube_api.get(kind, ns, name)
    assert found is not None
    return found["metadata"].get("annotations", {})


async def run(
    store: Store,
    kube: KubeClient | None,
    data: FreezeDecisionData,
    settings: EnforcementSettings = ON,
) -> Any:
    return await enforce(data, store=store, kube=kube, settings=settings, now=NOW)


async def test_annotate_mode_writes_the_freeze_annotations(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api)
    kube_api.seed(workload("Deployment", "batch", "shop", labels={"tier": "batch"}))
    result = await run(store, kube, decision())

    assert annotations(kube_api, "Deployment", "web-0") == {
        "sla.dev/frozen": "true",
        "sla.dev/frozen-by": "shop/freeze",
        "sla.dev/frozen-since": "2026-03-02T10:00:00Z",
        "sla.dev/freeze-reason": "budget spent",
    }
    assert annotations(kube_api, "Deployment", "batch") == {}
    assert [e.type for e in result.events] == ["dev.sla.freeze.applied"]
    assert result.events[0].id == "shop/freeze/shop|Deployment|tier=web/1/applied"
    assert [(o["name"], o["outcome"]) for o in result.events[0].data["objects"]] == [
        ("web-0", "applied")
    ]


async def test_lift_restores_the_prior_state_and_keeps_hand_set_annotations(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api, annotations={"owner": "team-shop"})
    await run(store, kube, decision())
    # A person annotates the object while it is frozen.
    kube.merge_patch(
        DEPLOYMENT,
        "shop",
        "web-0",
        {"metadata": {"annotations": {"note": "investigating"}}},
    )
    result = await run(store, kube, decision("lift", 2))

    assert annotations(kube_api, "Deployment", "web-0") == {
        "owner": "team-shop",
        "note": "investigating",
    }
    assert [e.type for e in result.events] == ["dev.sla.freeze.released"]
    assert await store.frozen_objects() == []


async def test_exempt_objects_are_left_alone(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api, annotations={"sla.dev/freeze-exempt": "P0 fix"})
    result = await run(store, kube, decision())
    assert annotations(kube_api, "Deployment", "web-0") == {
        "sla.dev/freeze-exempt": "P0 fix"
    }
    assert result.objects[0].outcome == "exempt"


async def test_two_freezes_hold_one_object_until_the_last_lets_go(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api)
    await run(store, kube, decision(policy="shop/freeze"))
    await run(store, kube, decision(policy="shop/release-train"))
    frozen_by = annotations(kube_api, "Deployment", "web-0")["sla.dev/frozen-by"]
    assert frozen_by == "shop/freeze,shop/release-train"

    await run(store, kube, decision("lift", 2, policy="shop/freeze"))
    left = annotations(kube_api, "Deployment", "web-0")
    assert left["sla.dev/frozen"] == "true"
    assert left["sla.dev/frozen-by"] == "shop/release-train"

    await run(store, kube, decision("lift", 2, policy="shop/release-train"))
    assert annotations(kube_api, "Deployment", "web-0") == {}


async def test_a_conflict_on_the_first_try_is_retried_after_a_read(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api)
    kube_api.fail_next("patch", "deployments", status=409)
    result = await run(store, kube, decision())
    assert result.objects[0].outcome == "applied"
    verbs = [r.verb for r in kube_api.requests if r.resource == "deployments"]
    assert verbs == ["list", "patch", "get", "patch"]


async def test_a_crash_half_way_is_finished_by_the_redelivery(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api, count=4)
    kube_api.fail_next("patch", "deployments", status=500, name="web-2")
    with pytest.raises(KubeUnavailable):
        await run(store, kube, decision())
    assert await store.freeze_events() == []

    before = len(kube_api.requests)
    result = await run(store, kube, decision())
    patched = [
        r.path.rsplit("/", 1)[-1]
        for r in kube_api.requests[before:]
        if r.verb == "patch"
    ]
    # web-0 and web-1 were frozen the first time: only web-2 and web-3 are written.
    assert patched == ["web-2", "web-3"]
    assert [o.outcome for o in result.objects] == ["applied"] * 4
    for index in range(4):
        assert annotations(kube_api, "Deployment", f"web-{index}")[
            "sla.dev/frozen"
        ] == ("true")


async def test_a_redelivered_decision_answers_the_same_events(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api)
    first = await run(store, kube, decision())
    writes = len(kube_api.requests)
    again = await run(store, kube, decision())
    assert [e.id for e in again.events] == [e.id for e in first.events]
    assert again.events[0].data == first.events[0].data
    assert len(kube_api.requests) == writes


async def test_a_scope_larger_than_the_limit_is_refused(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api, count=3)
    result = await run(store, kube, decision(), EnforcementSettings(max_objects=2))
    assert [e.type for e in result.events] == ["dev.sla.freeze.failed"]
    assert result.events[0].data["reason"] == (
        "the scope holds 3 objects, more than the 2 one decision may touch "
        "(SLA_ENFORCEMENT_MAX_OBJECTS); nothing was changed"
    )
    assert not any(r.verb == "patch" for r in kube_api.requests)


async def test_forbidden_is_a_failed_outcome_with_verb_and_status(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api)
    kube_api.deny("patch", "deployments", group="apps")
    result = await run(store, kube, decision())
    assert [e.type for e in result.events] == [
        "dev.sla.freeze.applied",
        "dev.sla.freeze.failed",
    ]
    failed = result.events[1].data["objects"][0]
    assert (failed["name"], failed["verb"], failed["status"]) == ("web-0", "patch", 403)


async def test_a_lift_arriving_before_its_freeze_wins(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api)
    await run(store, kube, decision("lift", 2))
    late = await run(store, kube, decision("freeze", 1))
    assert late.events == []
    assert late.note is not None and "older than decision 2" in late.note
    assert annotations(kube_api, "Deployment", "web-0") == {}


async def test_dry_run_and_no_cluster_touch_nothing(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api)
    dry = await run(store, kube, decision(dry_run=True))
    assert dry.dry_run and dry.objects[0].outcome == "applied"
    switched = await run(
        store, kube, decision(seq=2), EnforcementSettings(enforcement="dry-run")
    )
    assert switched.dry_run
    clusterless = await run(store, None, decision(seq=3))
    assert clusterless.dry_run and clusterless.objects == []
    assert not any(r.verb == "patch" for r in kube_api.requests)
    assert await store.frozen_objects() == []


async def test_enforcement_off_does_nothing(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    seed_web(kube_api)
    off = await run(store, kube, decision(), EnforcementSettings(enforcement="off"))
    assert off.events == [] and kube_api.requests == []


async def test_other_namespaces_need_the_cluster_setting(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    kube_api.seed(workload("Deployment", "api", "billing", labels={"tier": "web"}))
    data = decision(namespaces=("billing", "shop"))
    refused = await run(store, kube, data)
    assert [(o.kind, o.name, o.outcome) for o in refused.objects] == [
        ("Namespace", "billing", "failed")
    ]
    allowed = await run(
        store,
        kube,
        decision(seq=2, namespaces=("billing", "shop")),
        EnforcementSettings(allow_cross_namespace=True),
    )
    assert [(o.name, o.outcome) for o in allowed.objects] == [("api", "applied")]


def flux(kind: str, name: str, ns: str, **labels: str) -> dict[str, Any]:
    return workload(kind, name, ns, labels={"tier": "web", **labels})


async def test_flux_suspends_and_restores_the_prior_suspend_value(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    kube_api.seed(flux("Kustomization", "apps", "shop"))
    kube_api.seed(
        {
            **flux("HelmRelease", "web", "shop"),
            "spec": {
                **workload("HelmRelease", "web", "shop")["spec"],
                "suspend": False,
            },
        }
    )
    kinds = ("HelmRelease", "Kustomization")
    await run(store, kube, decision(kinds=kinds, mode="flux"))
    for kind, name in (("Kustomization", "apps"), ("HelmRelease", "web")):
        found = kube_api.get(kind, "shop", name)
        assert found is not None and found["spec"]["suspend"] is True

    await run(store, kube, decision("lift", 2, kinds=kinds, mode="flux"))
    kustomization = kube_api.get("Kustomization", "shop", "apps")
    release = kube_api.get("HelmRelease", "shop", "web")
    assert kustomization is not None and "suspend" not in kustomization["spec"]
    assert release is not None and release["spec"]["suspend"] is False


async def test_flux_system_is_never_suspended(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    kube_api.seed(flux("Kustomization", "flux-system", "flux-system"))
    result = await run(
        store,
        kube,
        decision(kinds=("Kustomization",), mode="flux", namespaces=("flux-system",)),
        EnforcementSettings(allow_cross_namespace=True),
    )
    assert result.objects[0].outcome == "skipped"
    found = kube_api.get("Kustomization", "flux-system", "flux-system")
    assert found is not None and "suspend" not in found["spec"]


async def test_a_child_of_a_parent_outside_the_scope_cannot_hold(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    parent_labels = {
        "kustomize.toolkit.fluxcd.io/name": "flux-system",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    kube_api.seed(
        workload("HelmRelease", "web", "shop", labels={"tier": "web", **parent_labels})
    )
    result = await run(store, kube, decision(kinds=("HelmRelease",), mode="flux"))
    assert result.objects[0].outcome == "failed"
    assert result.objects[0].reason is not None
    assert "flux-system/flux-system" in result.objects[0].reason
    found = kube_api.get("HelmRelease", "shop", "web")
    assert found is not None and "suspend" not in found["spec"]


async def test_argocd_adds_a_deny_window_keeping_the_others_and_lift_removes_it(
    store: Store, kube_api: KubeAPI, kube: KubeClient
) -> None:
    theirs = {
        "kind": "allow",
        "schedule": "0 8 * * 1-5",
        "duration": "10h",
        "applications": ["*"],
    }
    kube_api.seed(
        {
            **workload("AppProject", "shop", "argocd"),
            "spec": {"sourceRepos": ["*"], "syncWindows": [theirs]},
        }
    )
    app = workload("Application", "web", "argocd", labels={"tier": "web"})
    app["spec"]["project"] = "shop"
    kube_api.seed(app)
    data = decision(kinds=("Application",), mode="argocd", namespaces=("argocd",))
    settings = EnforcementSettings(allow_cross_namespace=True)
    await run(store, kube, data, settings)

    project = kube_api.get("AppProject", "argocd", "shop")
    assert project is not None
    assert project["spec"]["syncWindows"] == [
        theirs,
        {
            "kind": "deny",
            "schedule": "* * * * *",
            "duration": "1h",
            "timeZone": "UTC",
            "applications": ["web"],
            "manualSync": False,
            "description": "sla.dev freeze of application web",
        },
    ]
    lift = decision(
        "lift", 2, kinds=("Application",), mode="argocd", namespaces=("argocd",)
    )
    await run(store, kube, lift, settings)
    project = kube_api.get("AppProject", "argocd", "shop")
    assert project is not None and project["spec"]["syncWindows"] == [theirs]
    assert annotations(kube_api, "Application", "web", "argocd") == {
        "argocd.argoproj.io/refresh": "normal"
    }
