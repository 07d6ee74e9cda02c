"""The freeze ValidatingAdmissionPolicy, its CEL evaluated against real objects.

The API server evaluates ``matchConditions`` first (a workload that is not frozen is
not checked at all), then every validation; each expression sees ``object`` and
``oldObject``. The same happens here with celpy.
"""

from __future__ import annotations

import copy
from typing import Any

import celpy
import pytest

from tests.deploy.manifests import REPO_ROOT, load_documents
from tests.deploy.openapi import rule_holds

Document = dict[str, Any]

POLICY_FILE = REPO_ROOT / "crds" / "admission" / "freeze-policy.yaml"


def policy_documents() -> dict[str, Document]:
    return {doc["kind"]: doc for doc in load_documents(POLICY_FILE)}


def deployment(*, annotations: dict[str, str] | None = None) -> Document:
    metadata: Document = {"name": "checkout", "namespace": "shop"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}},
                "spec": {"containers": [{"name": "app", "image": "checkout:1.4.0"}]},
            },
        },
    }


def released(workload: Document, image: str = "checkout:1.5.0") -> Document:
    """The workload with a new release rolled into its pod template."""
    changed = copy.deepcopy(workload)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return changed


def admit(old: Document, new: Document) -> list[str]:
    """Messages of the validations that refuse the UPDATE; empty when admitted."""
    spec = policy_documents()["ValidatingAdmissionPolicy"]["spec"]
    activation = {
        "object": celpy.json_to_cel(new),
        "oldObject": celpy.json_to_cel(old),
    }
    conditions = spec.get("matchConditions", [])
    if not all(rule_holds(c["expression"], activation) for c in conditions):
        return []
    return [
        validation["message"]
        for validation in spec["validations"]
        if not rule_holds(validation["expression"], activation)
    ]


FROZEN = {"sla.dev/frozen": "true", "sla.dev/frozen-by": "shop/checkout-freeze"}


def test_release_to_frozen_workload_is_refused() -> None:
    old = deployment(annotations=FROZEN)

    (message,) = admit(old, released(old))

    assert "frozen" in message
    assert "sla.dev/freeze-exempt" in message


def test_scaling_a_frozen_workload_is_admitted() -> None:
    """Only the pod template is held: replicas and metadata may change."""
    old = deployment(annotations=FROZEN)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 6
    new["metadata"]["annotations"]["team"] = "payments"

    assert admit(old, new) == []


def test_exempt_release_to_frozen_workload_is_admitted() -> None:
    old = deployment(annotations=FROZEN)
    new = released(old)
    new["metadata"]["annotations"]["sla.dev/freeze-exempt"] = "CVE fix, P0"

    assert admit(old, new) == []


def test_exemption_on_the_old_object_only_does_not_admit() -> None:
    """The change itself must carry the exemption."""
    old = deployment(annotations=FROZEN | {"sla.dev/freeze-exempt": "earlier fix"})
    new = released(old)
    del new["metadata"]["annotations"]["sla.dev/freeze-exempt"]

    assert len(admit(old, new)) == 1


def test_removing_the_freeze_in_the_same_update_does_not_admit() -> None:
    old = deployment(annotations=FROZEN)
    new = released(old)
    new["metadata"]["annotations"] = {}

    assert len(admit(old, new)) == 1


def test_lifting_a_freeze_is_admitted() -> None:
    """freeze-enforcer removes its annotations without touching the template."""
    old = deployment(annotations=FROZEN)
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {}

    assert admit(old, new) == []


@pytest.mark.parametrize(
    "annotations",
    [None, {}, {"sla.dev/frozen": "false"}, {"team": "payments"}],
    ids=["no-annotations", "empty", "frozen-false", "other-annotation"],
)
def test_release_to_unfrozen_workload_is_admitted(
    annotations: dict[str, str] | None,
) -> None:
    old = deployment(annotations=annotations)

    assert admit(old, released(old)) == []


def test_policy_matches_updates_of_the_three_workload_kinds() -> None:
    (rule,) = policy_documents()["ValidatingAdmissionPolicy"]["spec"][
        "matchConstraints"
    ]["resourceRules"]

    assert rule["apiGroups"] == ["apps"]
    assert rule["operations"] == ["UPDATE"]
    assert sorted(rule["resources"]) == ["daemonsets", "deployments", "statefulsets"]


def test_binding_denies_with_the_policy() -> None:
    documents = policy_documents()
    policy = documents["ValidatingAdmissionPolicy"]
    binding = documents["ValidatingAdmissionPolicyBinding"]["spec"]

    assert policy["spec"]["failurePolicy"] == "Fail"
    assert binding["policyName"] == policy["metadata"]["name"]
    assert binding["validationActions"] == ["Deny"]
