"""slo-catalog through its ASGI app: real PostgreSQL, the Kubernetes API double.

The function reaches the double through a kubeconfig written by the test
(``SLA_KUBECONFIG``), the way it would run outside a cluster.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from sla.clients.store import CatalogueEntry, Store
from tests.support.functions import (
    binary_event,
    client_for,
    function_env,
    load_function,
    structured_event,
)
from tests.support.kube import KubeAPI
from tests.support.snapshots import budget_snapshot

API_SERVER = "https://10.0.0.1:443"
RELIST_SOURCE = "/apis/v1/namespaces/sla-system/pingsources/sla-relist"
T0 = datetime(2026, 1, 3, tzinfo=UTC)


def slo_object(
    name: str, *, generation: int = 1, objective: float = 99.5, **labels: str
) -> dict[str, Any]:
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": "SLODefinition",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "generation": generation,
            "labels": dict(labels),
        },
        "spec": {
            "service": "checkout",
            "objective": objective,
            "window": "30d",
            "indicator": {
                "ratio": {
                    "bad": {"metric": 'http_requests_total{code="500"}'},
                    "total": {"metric": "http_requests_total"},
                }
            },
        },
    }


def write_kubeconfig(path: Path, url: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "double", "cluster": {"server": url}}],
        "users": [{"name": "slo-catalog", "user": {"token": "catalog"}}],
        "contexts": [
            {"name": "double", "context": {"cluster": "double", "user": "slo-catalog"}}
        ],
        "current-context": "double",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def catalog(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    kube_api: KubeAPI,
    tmp_path: Path,
) -> AsyncIterator[Any]:
    function_env(
        monkeypatch,
        database_url=database_url,
        schema=schema_name,
        SLA_KUBECONFIG=str(write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)),
    )
    module, app = load_function("slo-catalog")
    yield app
    await module.function.aclose()


async def post(app: Any, event: tuple[dict[str, str], bytes]) -> Any:
    headers, body = event
    async with client_for(app) as client:
        return await client.post("/", headers=headers, content=body)


def resource_event(
    verb: str, obj: dict[str, Any], event_id: str
) -> tuple[dict[str, str], bytes]:
    return structured_event(
        f"dev.knative.apiserver.resource.{verb}",
        source=API_SERVER,
        id=event_id,
        data=obj,
    )


async def entries(store: Store) -> dict[str, CatalogueEntry]:
    return {f"{e.kind} {e.key}": e for e in await store.list_catalogue()}


async def test_an_added_slo_is_stored_with_its_generation(
    catalog: Any, store: Store, kube_api: KubeAPI
) -> None:
    stored = kube_api.seed(slo_object("checkout", team="payments"))

    answer = await post(catalog, resource_event("add", stored, "e-1"))

    assert answer.status_code == 202
    assert answer.content == b""
    entry = (await entries(store))["SLODefinition shop/checkout"]
    assert (entry.generation, entry.validation_error) == (1, None)
    assert entry.labels == {"team": "payments"}
    assert entry.document["spec"]["objective"] == 99.5
    assert "resourceVersion" not in entry.document["metadata"]
    condition = kube_api.get("SLODefinition", "shop", "checkout")["status"][
        "conditions"
    ]
    assert [(c["type"], c["status"]) for c in condition] == [("Valid", "True")]


async def test_an_update_with_the_same_generation_changes_nothing(
    catalog: Any, store: Store, kube_api: KubeAPI
) -> None:
    stored = kube_api.seed(slo_object("checkout"))
    await post(catalog, resource_event("add", stored, "e-1"))
    before = (await entries(store))["SLODefinition shop/checkout"]

    answer = await post(catalog, resource_event("update", stored, "e-2"))

    after = (await entries(store))["SLODefinition shop/checkout"]
    assert answer.status_code == 202
    assert after.updated_at == before.updated_at


async def test_an_update_older_than_the_stored_generation_is_ignored(
    catalog: Any, store: Store
) -> None:
    newer = slo_object("checkout", generation=3, objective=99.9)
    older = slo_object("checkout", generation=2, objective=99.0)

    await post(catalog, resource_event("update", newer, "e-3"))
    answer = await post(catalog, resource_event("update", older, "e-2"))

    entry = (await entries(store))["SLODefinition shop/checkout"]
    assert answer.status_code == 202
    assert entry.generation == 3
    assert entry.document["spec"]["objective"] == 99.9


async def test_an_invalid_slo_is_recorded_with_its_error_and_not_retried(
    catalog: Any, store: Store, kube_api: KubeAPI
) -> None:
    """An objective of 100 % leaves no error budget: refused by the model."""
    invalid = kube_api.seed(slo_object("perfect", objective=99.0))
    invalid["spec"]["objective"] = 100

    answer = await post(catalog, resource_event("add", invalid, "e-4"))

    entry = (await entries(store))["SLODefinition shop/perfect"]
    assert answer.status_code == 202
    assert entry.validation_error is not None
    assert "spec.objective" in entry.validation_error
    status = kube_api.get("SLODefinition", "shop", "perfect")["status"]
    (condition,) = status["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
    assert "spec.objective" in condition["message"]


async def test_a_deleted_slo_leaves_the_catalogue(catalog: Any, store: Store) -> None:
    obj = slo_object("checkout")
    await post(catalog, resource_event("add", obj, "e-1"))

    answer = await post(catalog, resource_event("delete", obj, "e-5"))

    assert answer.status_code == 202
    assert await entries(store) == {}


async def test_a_resource_of_another_kind_is_refused(catalog: Any) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}}

    answer = await post(catalog, resource_event("add", pod, "e-6"))

    assert answer.status_code == 400
    assert answer.json()["field"] == "data.kind"


async def test_relist_brings_the_catalogue_in_step_with_the_cluster(
    catalog: Any, store: Store, kube_api: KubeAPI
) -> None:
    """Cluster: a (generation 2), b. Catalogue: a (generation 1), c from the
    cluster, d from ``sla apply``. After: a at 2, b added, c gone, d kept."""
    kube_api.seed(slo_object("a", generation=2))
    kube_api.seed(slo_object("b"))
    for name, source in (("a", "kubernetes"), ("c", "kubernetes"), ("d", "file")):
        document = slo_object(name)
        await store.upsert_catalogue(
            CatalogueEntry(
                kind="SLODefinition",
                namespace="shop",
                name=name,
                source=source,
                generation=1,
                document=document,
            )
        )
    ping = binary_event("dev.knative.sources.ping", source=RELIST_SOURCE, id="r-1")

    answer = await post(catalog, ping)

    assert answer.status_code == 202
    after = await entries(store)
    assert {key: e.generation for key, e in after.items()} == {
        "SLODefinition shop/a": 2,
        "SLODefinition shop/b": 1,
        "SLODefinition shop/d": 1,
    }


def budget_event(
    evaluated_at: datetime, *, good: float = 995.0, status: str = "healthy"
) -> tuple[dict[str, str], bytes]:
    snapshot = budget_snapshot("shop/checkout", evaluated_at, good=good, objective=99)
    snapshot = snapshot.model_copy(update={"status": status})
    return binary_event(
        "dev.sla.budget.calculated",
        source="/sla/sli-calculator",
        id=snapshot.snapshot_id,
        data=snapshot.model_dump(mode="json"),
    )


def status_patches(kube_api: KubeAPI) -> list[Any]:
    return [
        r
        for r in kube_api.requests
        if r.verb == "patch" and r.resource == "slodefinitions/status"
    ]


async def test_a_budget_is_written_into_the_slo_status(
    catalog: Any, kube_api: KubeAPI
) -> None:
    """995 good of 1,000 at 99 %: e = 0.005, consumed = 0.5, remaining 50 %."""
    kube_api.seed(slo_object("checkout", generation=4))

    answer = await post(catalog, budget_event(T0))

    assert answer.status_code == 202
    status = kube_api.get("SLODefinition", "shop", "checkout")["status"]
    assert status["budgetRemaining"] == pytest.approx(50.0)
    assert status["status"] == "healthy"
    assert status["lastEvaluated"] == "2026-01-03T00:00:00Z"
    assert status["observedGeneration"] == 4
    assert status["burnRates"] == {"1h": pytest.approx(0.5)}


async def test_an_unchanged_status_is_written_at_most_once_per_interval(
    catalog: Any, kube_api: KubeAPI
) -> None:
    """Default interval 300 s: a minute later nothing is written; five minutes
    later, or sooner with another status, it is."""
    kube_api.seed(slo_object("checkout"))

    await post(catalog, budget_event(T0))
    await post(catalog, budget_event(T0 + timedelta(minutes=1), good=996))
    skipped = len(status_patches(kube_api))
    await post(catalog, budget_event(T0 + timedelta(minutes=5), good=997))
    await post(catalog, budget_event(T0 + timedelta(minutes=6), status="warning"))

    assert skipped == 1
    assert len(status_patches(kube_api)) == 3
    status = kube_api.get("SLODefinition", "shop", "checkout")["status"]
    assert status["lastEvaluated"] == "2026-01-03T00:06:00Z"


async def test_a_budget_older_than_the_status_changes_nothing(
    catalog: Any, kube_api: KubeAPI
) -> None:
    kube_api.seed(slo_object("checkout"))
    await post(catalog, budget_event(T0 + timedelta(minutes=10)))
    before = copy.deepcopy(kube_api.get("SLODefinition", "shop", "checkout"))

    answer = await post(catalog, budget_event(T0, good=100))

    assert answer.status_code == 202
    assert kube_api.get("SLODefinition", "shop", "checkout") == before


async def test_a_budget_of_a_deleted_slo_is_accepted(catalog: Any) -> None:
    answer = await post(catalog, budget_event(T0))

    assert answer.status_code == 202


async def test_an_unavailable_api_server_answers_503(
    catalog: Any, kube_api: KubeAPI
) -> None:
    kube_api.seed(slo_object("checkout"))
    kube_api.fail_next("get", "slodefinitions", status=503, times=10)

    answer = await post(catalog, budget_event(T0))

    assert answer.status_code == 503


@pytest.fixture
async def catalog_without_cluster(
    monkeypatch: pytest.MonkeyPatch, database_url: str, schema_name: str, store: Store
) -> AsyncIterator[Any]:
    """slo-catalog as ``sla dev`` runs it without --kubeconfig: no cluster at all."""
    function_env(monkeypatch, database_url=database_url, schema=schema_name)
    monkeypatch.delenv("SLA_KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    module, app = load_function("slo-catalog")
    yield app
    await module.function.aclose()


async def test_without_a_cluster_budgets_and_relists_are_accepted_and_skipped(
    catalog_without_cluster: Any, store: Store
) -> None:
    """Nothing to write a status into, nothing to list: 2xx, never a dead letter,
    and the catalogue loaded from files stays as it is."""
    await store.upsert_catalogue(
        CatalogueEntry(
            kind="SLODefinition",
            namespace="shop",
            name="checkout",
            source="file",
            generation=1,
            document=slo_object("checkout"),
        )
    )
    ping = binary_event("dev.knative.sources.ping", source=RELIST_SOURCE, id="r-1")

    budget = await post(catalog_without_cluster, budget_event(T0))
    relist = await post(catalog_without_cluster, ping)

    assert (budget.status_code, relist.status_code) == (202, 202)
    assert list(await entries(store)) == ["SLODefinition shop/checkout"]
