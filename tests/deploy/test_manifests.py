"""Every manifest parses, renders offline and validates against its kind's schema.

Kubernetes' own kinds are checked with kubernetes-validate (strict: unknown fields
are errors) at 1.30, the first release serving ValidatingAdmissionPolicy as v1. The
kinds of Knative, the Kafka broker and the Prometheus Operator are checked against
their CRDs' schemas in the corpus, the project's own against crds/.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.manifests import (
    KUSTOMIZATIONS,
    REPO_ROOT,
    SKAFFOLD_SCHEMA,
    Document,
    corpus_crds,
    group_of,
    is_core_api,
    load_documents,
    render,
    yaml_files,
)
from tests.deploy.openapi import CrdSchema

KUBERNETES_VERSION = "1.30"

FUNCTIONS = (
    "sli-calculator",
    "policy-evaluator",
    "freeze-enforcer",
    "webhook-intake",
    "slo-catalog",
    "budget-api",
)


@cache
def crd_index() -> dict[tuple[str, str], Document]:
    """(group, kind) → CRD, from the corpus and from crds/."""
    crds = list(corpus_crds()) + [
        doc for doc in render("crds") if doc["kind"] == "CustomResourceDefinition"
    ]
    return {(crd["spec"]["group"], crd["spec"]["names"]["kind"]): crd for crd in crds}


def schema_for(document: Document) -> CrdSchema:
    group, _, version = document["apiVersion"].rpartition("/")
    crd = crd_index()[(group, document["kind"])]
    # Foreign CRDs use CEL functions of the API server (quantity, isURL …) that a
    # plain CEL evaluator lacks: their OpenAPI schema is checked, not their rules.
    return CrdSchema(crd, version, cel=group == "sla.dev")


def rendered_documents() -> list[tuple[str, Document]]:
    """Every document of every kustomization, once per distinct content."""
    seen: dict[str, tuple[str, Document]] = {}
    for path in KUSTOMIZATIONS:
        for document in render(path):
            seen.setdefault(json.dumps(document, sort_keys=True), (path, document))
    return list(seen.values())


def document_id(entry: tuple[str, Document]) -> str:
    path, document = entry
    return f"{path}:{document['kind']}/{document['metadata']['name']}"


RENDERED = rendered_documents()
CORE = [entry for entry in RENDERED if is_core_api(entry[1]["apiVersion"])]
CUSTOM = [entry for entry in RENDERED if not is_core_api(entry[1]["apiVersion"])]


@pytest.mark.parametrize(
    "path", yaml_files(), ids=lambda path: str(path.relative_to(REPO_ROOT))
)
def test_yaml_file_parses_into_documents(path: Path) -> None:
    documents = load_documents(path)

    assert documents
    assert all(isinstance(document, dict) for document in documents)


def test_grafana_dashboard_is_json() -> None:
    dashboard = json.loads(
        (REPO_ROOT / "monitoring" / "grafana-dashboard.json").read_text()
    )

    assert dashboard["uid"] == "sla-management"


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_kustomization_renders_offline(path: str) -> None:
    documents = render(path)

    assert documents
    assert all({"apiVersion", "kind", "metadata"} <= set(doc) for doc in documents)


def test_root_renders_crds_knative_and_eventing() -> None:
    root = yaml.safe_load((REPO_ROOT / "kustomization.yaml").read_text())
    kinds = {document["kind"] for document in render(".")}

    assert root["resources"] == ["crds", "knative", "eventing"]
    assert {"CustomResourceDefinition", "ValidatingAdmissionPolicy"} <= kinds
    assert {"Service", "Broker", "Trigger", "PingSource", "KafkaSink"} <= kinds


@pytest.mark.parametrize("entry", CORE, ids=document_id)
def test_core_kind_validates_with_kubernetes_validate(
    entry: tuple[str, Document],
) -> None:
    _, document = entry

    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("entry", CUSTOM, ids=document_id)
def test_custom_kind_validates_against_its_crd(entry: tuple[str, Document]) -> None:
    _, document = entry

    assert schema_for(document).errors(document) == []


def test_every_rendered_kind_has_a_schema() -> None:
    """No document escapes validation for want of a schema."""
    groups = {group_of(doc["apiVersion"]) for _, doc in CUSTOM}

    assert groups == {
        "serving.knative.dev",
        "eventing.knative.dev",
        "sources.knative.dev",
        "monitoring.coreos.com",
    }
    for _, document in CUSTOM:
        group = group_of(document["apiVersion"])
        assert (group, document["kind"]) in crd_index()


def test_foreign_schema_check_catches_a_typo() -> None:
    """The CRD check is strict: a misspelt field of a Knative Service is an error."""
    service = next(doc for _, doc in CUSTOM if doc["kind"] == "Service")
    broken = json.loads(json.dumps(service))
    broken["spec"]["template"]["spec"]["containerConcurency"] = 5

    assert schema_for(broken).errors(broken) != []


def test_skaffold_config_validates_against_its_schema() -> None:
    schema = json.loads(SKAFFOLD_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)

    for config in load_documents(REPO_ROOT / "skaffold.yaml"):
        assert [error.message for error in validator.iter_errors(config)] == []


def test_skaffold_builds_every_function_and_applies_crds_first() -> None:
    crds, app = load_documents(REPO_ROOT / "skaffold.yaml")
    artifacts = {
        artifact["image"]: artifact["docker"] for artifact in app["build"]["artifacts"]
    }

    assert crds["apiVersion"] == app["apiVersion"] == "skaffold/v4beta13"
    assert crds["manifests"]["kustomize"]["paths"] == ["crds"]
    assert app["requires"] == [{"configs": [crds["metadata"]["name"]]}]
    assert artifacts == {
        f"sla-{name}": {"dockerfile": "Dockerfile", "buildArgs": {"FUNCTION": name}}
        for name in FUNCTIONS
    }
    assert {profile["name"] for profile in app["profiles"]} == {"dev", "prod"}
    for config in (crds, app):
        assert "kubectl" in config["deploy"]


def test_skaffold_manifest_paths_render_without_crds() -> None:
    """The app config and each profile deploy the functions, never the CRDs again."""
    (_, app) = load_documents(REPO_ROOT / "skaffold.yaml")
    path_sets = [app["manifests"]["kustomize"]["paths"]] + [
        profile["manifests"]["kustomize"]["paths"] for profile in app["profiles"]
    ]

    for paths in path_sets:
        kinds = {doc["kind"] for path in paths for doc in render(path)}
        assert "CustomResourceDefinition" not in kinds
        assert {"Service", "Trigger", "Broker"} <= kinds


def test_dockerfile_builds_one_function_as_non_root() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)

    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert "ARG FUNCTION" in dockerfile
    assert "FUNCTION_SOURCE=/app/functions/${FUNCTION}/main.py" in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert (
        'CMD ["functions-framework", "--target=handler", "--signature-type=http", '
        '"--asgi"]'
    ) in dockerfile


def test_dockerignore_lets_in_only_what_the_image_needs() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]

    assert rules[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!shared/", "!functions/"} <= set(rules)


@pytest.mark.parametrize(
    "path", yaml_files(), ids=lambda p: str(p.relative_to(REPO_ROOT))
)
def test_manifest_names_no_path_of_a_machine(path: Path) -> None:
    assert not re.search(r"(?<![\w.])/(work|home|root|tmp)/", path.read_text())
