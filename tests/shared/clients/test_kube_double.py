"""The Kubernetes API double, driven through the real ``kubernetes`` client.

Every test here talks HTTP to ``tests.support.kube`` with the official client
(``AppsV1Api``, ``CustomObjectsApi``, ``CoreV1Api``, the dynamic client) or with the
library's ``KubeClient``, so what later tests rely on is checked the way they use it:
selectors, merge and JSON patches, optimistic concurrency, the status subresource,
permissions, injected faults, and the mapping of API errors to the library's.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import dynamic

from sla.clients import kube as kube_module
from sla.clients.kube import DEPLOYMENT, SLO_DEFINITION, KubeClient
from sla.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeNotFound,
    KubeUnavailable,
)
from tests.support.kube import KubeAPI, ResourceType, workload
from tests.support.kube_patches import PatchError, apply_json_patch, merge_patch

SLO_ARGS = ("sla.dev", "v1alpha1", "shop", "slodefinitions")


@pytest.fixture
def wrapper(kube_api: KubeAPI) -> Iterator[KubeClient]:
    with KubeClient.from_url(kube_api.url) as kube:
        yield kube


@pytest.fixture
def apps(kube_api: KubeAPI) -> Any:
    return k8s.AppsV1Api(kube_api.client())


@pytest.fixture
def custom(kube_api: KubeAPI) -> Any:
    return k8s.CustomObjectsApi(kube_api.client())


def seed_fleet(kube_api: KubeAPI) -> None:
    """Four Deployments in "shop" whose labels tell the selector forms apart."""
    fleet = {
        "web": {"app": "web", "tier": "front"},
        "api": {"app": "api", "tier": "back"},
        "edge": {"app": "edge", "tier": "edge", "canary": "true"},
        "batch": {"app": "batch"},
    }
    for name, labels in fleet.items():
        kube_api.seed(workload("Deployment", name, "shop", labels=labels))


def api_error(call: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """The status and decoded Status body of a call that must fail."""
    with pytest.raises(k8s.ApiException) as raised:
        call(*args, **kwargs)
    return raised.value.status, json.loads(raised.value.body)


# -- lists and selectors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("app=web", ["web"], id="equality"),
        pytest.param("app==api", ["api"], id="double-equals"),
        # != matches objects that lack the key, as in the real API.
        pytest.param("tier!=back", ["batch", "edge", "web"], id="not-equal"),
        pytest.param("tier in (front,edge)", ["edge", "web"], id="in"),
        pytest.param("tier notin (front)", ["api", "batch", "edge"], id="notin"),
        pytest.param("canary", ["edge"], id="exists"),
        pytest.param("!canary", ["api", "batch", "web"], id="not-exists"),
        pytest.param("tier,tier!=front", ["api", "edge"], id="and"),
        pytest.param("", ["api", "batch", "edge", "web"], id="empty"),
    ],
)
def test_list_filters_by_each_label_selector_form(
    kube_api: KubeAPI, apps: Any, selector: str, expected: list[str]
) -> None:
    seed_fleet(kube_api)

    listed = apps.list_namespaced_deployment("shop", label_selector=selector)

    assert [item.metadata.name for item in listed.items] == expected


def test_list_reports_the_current_resource_version(
    kube_api: KubeAPI, apps: Any
) -> None:
    seed_fleet(kube_api)  # four creates: revisions 1 to 4

    listed = apps.list_namespaced_deployment("shop")

    assert listed.metadata.resource_version == "4"


def test_list_across_namespaces_and_by_field_selector(
    kube_api: KubeAPI, apps: Any
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))
    kube_api.seed(workload("Deployment", "web", "blog"))
    kube_api.seed(workload("Deployment", "api", "blog"))

    everywhere = apps.list_deployment_for_all_namespaces()
    named_web = apps.list_deployment_for_all_namespaces(
        field_selector="metadata.name=web"
    )

    as_keys = [(d.metadata.namespace, d.metadata.name) for d in everywhere.items]
    assert as_keys == [("blog", "api"), ("blog", "web"), ("shop", "web")]
    assert [d.metadata.namespace for d in named_web.items] == ["blog", "shop"]


def test_a_selector_that_does_not_parse_is_a_bad_request(
    kube_api: KubeAPI, apps: Any
) -> None:
    status, body = api_error(
        apps.list_namespaced_deployment, "shop", label_selector="tier in front"
    )

    assert (status, body["reason"], body["kind"]) == (400, "BadRequest", "Status")


def test_list_items_of_built_in_kinds_carry_no_type_but_the_wrapper_adds_it(
    kube_api: KubeAPI, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))
    raw = kube_api.client().call_api(
        "/apis/apps/v1/namespaces/shop/deployments",
        "GET",
        response_type="object",
        _return_http_data_only=True,
    )

    listed = wrapper.list_objects(DEPLOYMENT, "shop")

    assert "kind" not in raw["items"][0]
    assert (listed[0]["apiVersion"], listed[0]["kind"]) == ("apps/v1", "Deployment")


def test_wrapper_lists_page_by_page(
    kube_api: KubeAPI, wrapper: KubeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b", "c"):
        kube_api.seed(workload("SLODefinition", name, "shop", labels={"team": "x"}))
    monkeypatch.setattr(kube_module, "LIST_PAGE_SIZE", 2)

    listed = wrapper.list_objects(SLO_DEFINITION, "shop", label_selector="team=x")

    assert [obj["metadata"]["name"] for obj in listed] == ["a", "b", "c"]
    queries = [r.query for r in kube_api.requests]
    assert [q["limit"] for q in queries] == ["2", "2"]
    assert "continue" not in queries[0] and queries[1]["continue"]


# -- create, get, delete ---------------------------------------------------------------


def test_create_stamps_system_fields_and_drops_status(custom: Any) -> None:
    body = workload("SLODefinition", "checkout", "shop")
    body["status"] = {"budgetRemaining": 1.0}

    created = custom.create_namespaced_custom_object(*SLO_ARGS, body)

    metadata = created["metadata"]
    assert (metadata["generation"], metadata["resourceVersion"]) == (1, "1")
    assert metadata["uid"] and metadata["creationTimestamp"].endswith("Z")
    assert "status" not in created


def test_creating_an_existing_object_is_already_exists(
    kube_api: KubeAPI, apps: Any
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))

    status, body = api_error(
        apps.create_namespaced_deployment, "shop", workload("Deployment", "web", "shop")
    )

    assert (status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'deployments.apps "web" already exists'


def test_missing_objects_are_not_found(apps: Any, wrapper: KubeClient) -> None:
    status, body = api_error(apps.delete_namespaced_deployment, "gone", "shop")
    with pytest.raises(KubeNotFound) as raised:
        wrapper.get(DEPLOYMENT, "shop", "gone")

    assert (status, body["message"]) == (404, 'deployments.apps "gone" not found')
    error = raised.value
    assert (error.status, error.verb, error.kind, error.name) == (
        404,
        "get",
        "Deployment",
        "gone",
    )
    assert isinstance(error.__cause__, k8s.ApiException)


def test_delete_removes_the_object(kube_api: KubeAPI, apps: Any) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))

    answer = apps.delete_namespaced_deployment("web", "shop")

    assert answer.status == "Success"
    assert kube_api.get("Deployment", "shop", "web") is None


# -- patches ---------------------------------------------------------------------------


def test_merge_patch_null_deletes_an_annotation(kube_api: KubeAPI, custom: Any) -> None:
    kube_api.seed(
        workload("SLODefinition", "checkout", "shop", annotations={"a": "1", "b": "2"})
    )

    patched = custom.patch_namespaced_custom_object(
        *SLO_ARGS, "checkout", {"metadata": {"annotations": {"a": None, "c": "3"}}}
    )

    assert patched["metadata"]["annotations"] == {"b": "2", "c": "3"}


def test_wrapper_merge_patch_removes_the_last_annotation_entirely(
    kube_api: KubeAPI, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop", annotations={"a": "1"}))

    patched = wrapper.merge_patch(
        DEPLOYMENT, "shop", "web", {"metadata": {"annotations": {"a": None}}}
    )

    # ObjectMeta's maps are omitempty: an emptied map is gone, not {}.
    assert "annotations" not in patched["metadata"]


def test_merge_patch_replaces_lists(kube_api: KubeAPI, custom: Any) -> None:
    kube_api.seed(
        workload("SLODefinition", "checkout", "shop", spec={"tags": ["a", "b"]})
    )

    patched = custom.patch_namespaced_custom_object(
        *SLO_ARGS, "checkout", {"spec": {"tags": ["c"]}}
    )

    assert patched["spec"]["tags"] == ["c"]


def test_strategic_merge_patch_is_refused_for_custom_resources(
    kube_api: KubeAPI,
) -> None:
    kube_api.seed(workload("SLODefinition", "checkout", "shop"))
    api_client = kube_api.client()

    status, body = api_error(
        api_client.call_api,
        "/apis/sla.dev/v1alpha1/namespaces/shop/slodefinitions/checkout",
        "PATCH",
        header_params={"Content-Type": "application/strategic-merge-patch+json"},
        body={"metadata": {"labels": {"a": "b"}}},
        response_type="object",
    )

    assert (status, body["reason"]) == (415, "UnsupportedMediaType")


def test_json_patch_applies_after_a_passing_test_and_fails_after_a_failing_one(
    kube_api: KubeAPI, apps: Any
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop", spec={"replicas": 2}))
    passing = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
    ]
    failing = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 4},
    ]

    patched = apps.patch_namespaced_deployment("web", "shop", passing)
    status, body = api_error(apps.patch_namespaced_deployment, "web", "shop", failing)

    assert patched.spec.replicas == 3
    assert (status, body["reason"]) == (422, "Invalid")
    assert kube_api.get("Deployment", "shop", "web")["spec"]["replicas"] == 3


def test_merge_patch_follows_rfc_7386_examples() -> None:
    # RFC 7386 appendix A, a selection.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_json_patch_follows_rfc_6902_examples() -> None:
    # RFC 6902 appendix A: add to an array, move, the "-" index, and test's strictness.
    assert apply_json_patch(
        {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}]
    ) == {"foo": ["bar", "qux", "baz"]}
    assert apply_json_patch(
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
    ) == {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}
    assert apply_json_patch(
        {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc"]}]
    ) == {"foo": ["bar", ["abc"]]}
    assert apply_json_patch(
        {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}]
    ) == {"/": 9, "~1": 10}
    with pytest.raises(PatchError):
        apply_json_patch({"baz": 1}, [{"op": "test", "path": "/baz", "value": True}])
    with pytest.raises(PatchError):
        apply_json_patch({"foo": "bar"}, [{"op": "remove", "path": "/baz"}])


# -- optimistic concurrency ------------------------------------------------------------


def test_update_with_a_stale_resource_version_is_a_conflict(
    kube_api: KubeAPI, apps: Any
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))
    read = apps.read_namespaced_deployment("web", "shop")
    apps.patch_namespaced_deployment(
        "web", "shop", {"metadata": {"labels": {"x": "1"}}}
    )
    read.spec.replicas = 5

    status, body = api_error(apps.replace_namespaced_deployment, "web", "shop", read)

    assert (status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )


def test_merge_patch_with_a_stale_resource_version_is_kube_conflict(
    kube_api: KubeAPI, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))  # revision 1
    annotate = {"metadata": {"annotations": {"sla.dev/frozen": "true"}}}

    patched = wrapper.merge_patch(
        DEPLOYMENT, "shop", "web", annotate, resource_version="1"
    )
    with pytest.raises(KubeConflict) as raised:
        wrapper.merge_patch(DEPLOYMENT, "shop", "web", annotate, resource_version="1")

    assert patched["metadata"]["resourceVersion"] == "2"
    assert (raised.value.status, raised.value.verb, raised.value.name) == (
        409,
        "patch",
        "web",
    )
    sent = kube_api.requests[-1]
    assert sent.content_type == "application/merge-patch+json"
    assert sent.body["metadata"]["resourceVersion"] == "1"


def test_a_write_that_changes_nothing_keeps_the_resource_version(
    kube_api: KubeAPI, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop", annotations={"a": "1"}))

    again = wrapper.merge_patch(
        DEPLOYMENT, "shop", "web", {"metadata": {"annotations": {"a": "1"}}}
    )

    assert again["metadata"]["resourceVersion"] == "1"


# -- status subresource and generation -------------------------------------------------


def test_writes_to_the_main_resource_keep_the_stored_status(
    kube_api: KubeAPI, custom: Any
) -> None:
    seeded = workload("SLODefinition", "checkout", "shop")
    seeded["status"] = {"budgetRemaining": 0.5}
    kube_api.seed(seeded)

    patched = custom.patch_namespaced_custom_object(
        *SLO_ARGS, "checkout", {"status": {"budgetRemaining": 0.1}}
    )

    assert patched["status"] == {"budgetRemaining": 0.5}
    assert patched["metadata"]["resourceVersion"] == "1"  # nothing changed


def test_status_writes_change_only_status_and_keep_the_generation(
    kube_api: KubeAPI, custom: Any, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("SLODefinition", "checkout", "shop"))  # revision 1

    by_client = custom.patch_namespaced_custom_object_status(
        *SLO_ARGS,
        "checkout",
        {"spec": {"objective": 50}, "status": {"budgetRemaining": 0.5, "old": 1}},
    )
    by_wrapper = wrapper.patch_status(
        SLO_DEFINITION, "shop", "checkout", {"old": None}, resource_version="2"
    )

    assert by_client["spec"]["objective"] == 99.9
    assert by_wrapper["status"] == {"budgetRemaining": 0.5}
    assert (
        by_wrapper["metadata"]["generation"],
        by_wrapper["metadata"]["resourceVersion"],
    ) == (1, "3")


def test_status_put_replaces_status_only(kube_api: KubeAPI, custom: Any) -> None:
    kube_api.seed(workload("SLODefinition", "checkout", "shop"))
    body = custom.get_namespaced_custom_object(*SLO_ARGS, "checkout")
    body["spec"]["objective"] = 50
    body["status"] = {"budgetRemaining": 0.25}

    replaced = custom.replace_namespaced_custom_object_status(
        *SLO_ARGS, "checkout", body
    )

    assert (replaced["spec"]["objective"], replaced["status"]) == (
        99.9,
        {"budgetRemaining": 0.25},
    )


def test_generation_moves_on_spec_changes_only(kube_api: KubeAPI, apps: Any) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))  # generation 1, revision 1

    labelled = apps.patch_namespaced_deployment(
        "web", "shop", {"metadata": {"labels": {"x": "1"}}}
    )
    scaled = apps.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 3}})

    assert (labelled.metadata.generation, labelled.metadata.resource_version) == (
        1,
        "2",
    )
    assert (scaled.metadata.generation, scaled.metadata.resource_version) == (2, "3")


# -- permissions -----------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["get", "list", "patch"])
def test_a_denied_verb_is_forbidden_and_others_still_work(
    kube_api: KubeAPI, wrapper: KubeClient, verb: str
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))
    kube_api.deny(verb, "deployments", group="apps")
    calls = {
        "get": lambda: wrapper.get(DEPLOYMENT, "shop", "web"),
        "list": lambda: wrapper.list_objects(DEPLOYMENT, "shop"),
        "patch": lambda: wrapper.merge_patch(DEPLOYMENT, "shop", "web", {}),
    }

    with pytest.raises(KubeForbidden) as raised:
        calls.pop(verb)()
    for allowed in calls.values():
        allowed()

    assert (raised.value.status, raised.value.verb) == (403, verb)


def test_forbidden_message_names_the_user_verb_and_resource(kube_api: KubeAPI) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))
    kube_api.add_user("enforcer-token", "system:serviceaccount:sla:freeze-enforcer")
    kube_api.allow_only([("get", "apps", "deployments")], token="enforcer-token")
    apps = k8s.AppsV1Api(kube_api.client(token="enforcer-token"))

    apps.read_namespaced_deployment("web", "shop")
    status, body = api_error(
        apps.patch_namespaced_deployment, "web", "shop", {"spec": {"replicas": 2}}
    )

    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        'deployments.apps "web" is forbidden: User '
        '"system:serviceaccount:sla:freeze-enforcer" cannot patch resource '
        '"deployments" in API group "apps" in the namespace "shop"'
    )


def test_the_status_subresource_has_its_own_permission(
    kube_api: KubeAPI, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("SLODefinition", "checkout", "shop"))
    kube_api.deny("patch", "slodefinitions/status", group="sla.dev")

    wrapper.merge_patch(SLO_DEFINITION, "shop", "checkout", {"metadata": {}})
    with pytest.raises(KubeForbidden):
        wrapper.patch_status(SLO_DEFINITION, "shop", "checkout", {"a": 1})


def test_an_unknown_token_is_unauthorized(kube_api: KubeAPI) -> None:
    kube_api.add_user("good", "someone")
    apps = k8s.AppsV1Api(kube_api.client(token="bad"))

    status, body = api_error(apps.list_namespaced_deployment, "shop")

    assert (status, body["reason"]) == (401, "Unauthorized")


# -- injected faults and the request log -----------------------------------------------


def test_fail_next_fails_matching_requests_then_lets_them_through(
    kube_api: KubeAPI, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))
    kube_api.fail_next("patch", "deployments", status=500, times=2)
    annotate = {"metadata": {"annotations": {"a": "1"}}}

    outcomes: list[int | None] = []
    for _ in range(3):
        try:
            wrapper.merge_patch(DEPLOYMENT, "shop", "web", annotate)
            outcomes.append(200)
        except KubeUnavailable as error:
            outcomes.append(error.status)

    assert outcomes == [500, 500, 200]
    assert wrapper.get(DEPLOYMENT, "shop", "web")["metadata"]["annotations"] == {
        "a": "1"
    }


def test_injected_429_carries_retry_after_and_is_transient(
    kube_api: KubeAPI, apps: Any, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))
    kube_api.fail_next("patch", "deployments", status=429, retry_after=3, times=2)
    scale = {"spec": {"replicas": 2}}

    with pytest.raises(k8s.ApiException) as raised:
        apps.patch_namespaced_deployment("web", "shop", scale)
    with pytest.raises(KubeUnavailable) as unavailable:
        wrapper.merge_patch(DEPLOYMENT, "shop", "web", scale)

    assert raised.value.status == 429
    assert raised.value.headers["Retry-After"] == "3"
    assert unavailable.value.status == 429


def test_the_wrapper_leaves_retry_after_to_its_caller(
    kube_api: KubeAPI, apps: Any, wrapper: KubeClient
) -> None:
    """A plain client's urllib3 retries a get answered 429 with Retry-After by
    itself; the wrapper reports it instead of sleeping for as long as it says."""
    kube_api.seed(workload("Deployment", "web", "shop"))
    kube_api.fail_next("get", "deployments", status=429, retry_after=0)
    apps.read_namespaced_deployment("web", "shop")

    kube_api.fail_next("get", "deployments", status=429, retry_after=0)
    with pytest.raises(KubeUnavailable):
        wrapper.get(DEPLOYMENT, "shop", "web")

    assert [r.status for r in kube_api.requests] == [429, 200, 429]


def test_injected_409_reads_like_a_real_conflict(
    kube_api: KubeAPI, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("SLODefinition", "checkout", "shop"))
    kube_api.fail_next("patch", "slodefinitions/status", status=409)

    with pytest.raises(KubeConflict) as raised:
        wrapper.patch_status(SLO_DEFINITION, "shop", "checkout", {"a": 1})

    assert "the object has been modified" in raised.value.message
    assert kube_api.get("SLODefinition", "shop", "checkout").get("status") is None


def test_the_request_log_records_what_the_client_sent(
    kube_api: KubeAPI,
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))
    kube_api.add_user("t0ken", "enforcer")

    with KubeClient.from_url(kube_api.url, token="t0ken") as kube:
        kube.list_objects(DEPLOYMENT, "shop", label_selector="app=web")
        kube.merge_patch(
            DEPLOYMENT, "shop", "web", {"metadata": {"labels": {"a": "b"}}}
        )

    listed, patched = kube_api.requests
    assert (listed.method, listed.path, listed.verb) == (
        "GET",
        "/apis/apps/v1/namespaces/shop/deployments",
        "list",
    )
    assert listed.query == {"limit": "500", "labelSelector": "app=web"}
    assert (patched.method, patched.body, patched.user) == (
        "PATCH",
        {"metadata": {"labels": {"a": "b"}}},
        "enforcer",
    )
    assert patched.token == "t0ken"


# -- connecting ------------------------------------------------------------------------


def test_wrapper_reads_a_kubeconfig(kube_api: KubeAPI, tmp_path: Any) -> None:
    kube_api.add_user("from-kubeconfig", "ci")
    kube_api.seed(workload("Deployment", "web", "shop"))
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "double", "cluster": {"server": kube_api.url}}],
                "users": [{"name": "ci", "user": {"token": "from-kubeconfig"}}],
                "contexts": [
                    {"name": "test", "context": {"cluster": "double", "user": "ci"}}
                ],
                "current-context": "test",
            }
        )
    )

    with KubeClient.from_kubeconfig(kubeconfig) as kube:
        found = kube.get(DEPLOYMENT, "shop", "web")

    assert found["metadata"]["name"] == "web"
    assert kube_api.requests[-1].user == "ci"


def test_a_missing_kubeconfig_is_a_kube_error(tmp_path: Any) -> None:
    with pytest.raises(KubeError) as raised:
        KubeClient.from_kubeconfig(tmp_path / "missing")

    assert (raised.value.status, raised.value.verb) == (None, "configure")


def test_no_server_is_kube_unavailable_without_a_status() -> None:
    # A port that was free a moment ago and has nothing listening now.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with (
        KubeClient.from_url(f"http://127.0.0.1:{port}", timeout_seconds=1) as kube,
        pytest.raises(KubeUnavailable) as raised,
    ):
        kube.get(DEPLOYMENT, "shop", "web")

    assert raised.value.status is None
    assert isinstance(raised.value, KubeError)


async def test_the_double_serves_async_tests(
    kube_api: KubeAPI, wrapper: KubeClient
) -> None:
    kube_api.seed(workload("Deployment", "web", "shop"))

    found = await asyncio.to_thread(wrapper.get, DEPLOYMENT, "shop", "web")

    assert found["kind"] == "Deployment"


# -- discovery and more kinds ----------------------------------------------------------


def test_dynamic_client_discovers_every_kind(kube_api: KubeAPI, tmp_path: Any) -> None:
    kube_api.seed(workload("HelmRelease", "app", "shop"))
    client = dynamic.DynamicClient(
        kube_api.client(), cache_file=str(tmp_path / "discovery.json")
    )

    found = {
        kind: client.resources.get(api_version=api_version, kind=kind).name
        for api_version, kind in [
            ("v1", "Namespace"),
            ("apps/v1", "StatefulSet"),
            ("argoproj.io/v1alpha1", "AppProject"),
            ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
            ("sla.dev/v1alpha1", "SLAPolicy"),
        ]
    }
    releases = client.resources.get(
        api_version="helm.toolkit.fluxcd.io/v2", kind="HelmRelease"
    )

    assert found == {
        "Namespace": "namespaces",
        "StatefulSet": "statefulsets",
        "AppProject": "appprojects",
        "Kustomization": "kustomizations",
        "SLAPolicy": "slapolicies",
    }
    assert [item.metadata.name for item in releases.get(namespace="shop").items] == [
        "app"
    ]


def test_registered_kinds_are_served(kube_api: KubeAPI) -> None:
    kube_api.register(
        ResourceType(
            "", "v1", "ConfigMap", "configmaps", status_subresource=False, custom=False
        )
    )
    core = k8s.CoreV1Api(kube_api.client())
    config_map = {"metadata": {"name": "settings"}, "data": {"a": "1"}}

    core.create_namespaced_config_map("shop", config_map)
    core.patch_namespaced_config_map(
        "settings", "shop", {"data": {"a": None, "b": "2"}}
    )

    assert kube_api.get("ConfigMap", "shop", "settings")["data"] == {"b": "2"}
    assert [ns.metadata.name for ns in core.list_namespace().items] == []
