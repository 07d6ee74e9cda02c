"""The SLODefinition and SLAPolicy CRDs: structural, and as strict as the models.

Each invalid document below is refused twice, by the CRD (OpenAPI schema and CEL
rules, as the API server would) and by the pydantic model, so the two stay mirrors.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest

from sla.model.policy import SLAPolicy
from sla.model.slo import SLODefinition
from tests.deploy.manifests import REPO_ROOT, load_documents
from tests.deploy.openapi import CrdSchema, structural_problems

Document = dict[str, Any]

CRD_FILES = {
    "SLODefinition": REPO_ROOT / "crds" / "slodefinitions.yaml",
    "SLAPolicy": REPO_ROOT / "crds" / "slapolicies.yaml",
}
MODELS: dict[str, type[pydantic.BaseModel]] = {
    "SLODefinition": SLODefinition,
    "SLAPolicy": SLAPolicy,
}
EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))


def crd(kind: str) -> Document:
    (document,) = load_documents(CRD_FILES[kind])
    return document


def crd_schema(kind: str) -> CrdSchema:
    return CrdSchema(crd(kind), "v1alpha1")


def example(name: str) -> Document:
    (document,) = load_documents(REPO_ROOT / "examples" / f"{name}.yaml")
    return document


@pytest.mark.parametrize("kind", sorted(CRD_FILES))
def test_crd_schema_is_structural_and_fully_typed(kind: str) -> None:
    """No combinators, every node typed, every default valid, every rule compiles."""
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    assert structural_problems(schema) == []


@pytest.mark.parametrize(
    ("kind", "plural", "short_name"),
    [
        ("SLODefinition", "slodefinitions", "slodef"),
        ("SLAPolicy", "slapolicies", "slapol"),
    ],
)
def test_crd_names_stay_clear_of_pyrra(kind: str, plural: str, short_name: str) -> None:
    """sla.dev/v1alpha1, namespaced, short names other than Pyrra's ``slo``."""
    spec = crd(kind)["spec"]

    assert crd(kind)["metadata"]["name"] == f"{plural}.sla.dev"
    assert spec["group"] == "sla.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"]["shortNames"] == [short_name]
    assert spec["names"]["categories"] == ["sla"]
    assert [v["name"] for v in spec["versions"]] == ["v1alpha1"]
    assert spec["versions"][0]["subresources"] == {"status": {}}


def test_slo_printer_columns_show_objective_window_budget_status_age() -> None:
    (version,) = crd("SLODefinition")["spec"]["versions"]
    columns = {
        column["name"]: column["jsonPath"]
        for column in version["additionalPrinterColumns"]
        if column.get("priority", 0) == 0
    }

    assert columns == {
        "Objective": ".spec.objective",
        "Window": ".spec.window",
        "Budget Remaining": ".status.budgetRemaining",
        "Status": ".status.status",
        "Age": ".metadata.creationTimestamp",
    }


def test_slo_status_holds_the_budget_figures() -> None:
    """Status written by slo-catalog validates; its fields are the agreed ones."""
    schema = crd_schema("SLODefinition")
    document = example("checkout-availability")
    document["status"] = {
        "observedGeneration": 3,
        "lastEvaluated": "2025-01-31T12:00:00Z",
        "status": "warning",
        "budgetRemaining": -12.5,
        "burnRates": {"5m": 0.4, "1h": 2.5, "28d": 1.125},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": "2025-01-31T12:00:00Z",
                "reason": "Evaluated",
                "message": "",
            }
        ],
    }

    assert set(schema.schema["properties"]["status"]["properties"]) == {
        "observedGeneration",
        "lastEvaluated",
        "status",
        "budgetRemaining",
        "burnRates",
        "conditions",
    }
    assert schema.errors(document) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_is_valid_for_crd_and_model(path: Path) -> None:
    """What the API server accepts, ``sla validate`` accepts, and the other way."""
    for document in load_documents(path):
        kind = document["kind"]

        assert crd_schema(kind).errors(document) == []
        MODELS[kind].model_validate(document)


def test_examples_cover_both_kinds_and_the_asked_shapes() -> None:
    availability = example("checkout-availability")["spec"]
    latency = example("checkout-latency")["spec"]
    policy = example("checkout-freeze")["spec"]

    assert "ratio" in availability["indicator"]
    assert latency["window"] == "30d"
    assert latency["alerting"] == {"preset": "google"}
    assert policy["freeze"]["when"] == [
        {"budgetRemainingBelow": 10},
        {"alertFiring": "page"},
    ]
    assert policy["lift"] == {"budgetRemainingAbove": 25, "holdFor": "1h"}
    assert policy["scope"] == {
        "selector": {"matchLabels": {"app": "checkout"}},
        "kinds": ["Deployment"],
    }


Mutation = Callable[[Document], None]


def _set(path: str, value: Any) -> Mutation:
    *parents, leaf = path.split(".")

    def mutate(document: Document) -> None:
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    return mutate


def _delete(path: str) -> Mutation:
    *parents, leaf = path.split(".")

    def mutate(document: Document) -> None:
        node = document
        for part in parents:
            node = node[part]
        del node[leaf]

    return mutate


GOOD = {"metric": 'http_requests_total{code!~"5.."}'}

INVALID = [
    pytest.param(
        "checkout-availability",
        _set("spec.objective", 100),
        "spec.objective",
        id="objective-100",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.objective", 0),
        "spec.objective",
        id="objective-0",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.window", "30days"),
        "spec.window",
        id="window-not-a-duration",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.window", "0d"),
        "must be a positive duration",
        id="window-zero",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.indicator.ratio.good", GOOD),
        "exactly one of good or bad",
        id="ratio-good-and-bad",
    ),
    pytest.param(
        "checkout-availability",
        _delete("spec.indicator.ratio.bad"),
        "exactly one of good or bad",
        id="ratio-neither-good-nor-bad",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.indicator.ratio.total", {"metric": "a", "expr": "b[$window]"}),
        "exactly one of metric or expr",
        id="query-metric-and-expr",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.indicator.ratio.total", {"expr": "sum(rate(x[5m]))"}),
        "must contain $window",
        id="expr-without-window",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.indicator.boolGauge", {"metric": "probe_success"}),
        "exactly one indicator kind",
        id="two-indicator-kinds",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.indicator", {}),
        "exactly one indicator kind",
        id="no-indicator-kind",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.timeZone", "Europe/Berlin"),
        "timeZone applies only to calendar windows",
        id="time-zone-on-rolling-window",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.budgetingMethod", "Timeslices"),
        "need timeslice.length",
        id="timeslices-without-timeslice",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.timeslice", {"length": "5m"}),
        "only used with Timeslices",
        id="timeslice-with-occurrences",
    ),
    pytest.param(
        "checkout-availability",
        _set("spec.unknownField", True),
        "Additional properties",
        id="unknown-field",
    ),
    pytest.param(
        "checkout-latency",
        _set("spec.indicator.latency.histogram", "http_duration_seconds_bucket"),
        "without _bucket",
        id="histogram-with-bucket-suffix",
    ),
    pytest.param(
        "checkout-latency",
        _set("spec.indicator.latency.threshold", 0),
        "spec.indicator.latency.threshold",
        id="threshold-zero",
    ),
    pytest.param(
        "checkout-latency",
        _set("spec.alerting.rows", []),
        "a preset or rows, not both",
        id="preset-and-rows",
    ),
    pytest.param(
        "checkout-latency",
        _set("spec.warningBelow", 101),
        "spec.warningBelow",
        id="warning-above-100",
    ),
    pytest.param(
        "checkout-freeze",
        _set("spec.lift.budgetRemainingAbove", 10),
        "must be higher than every freeze level",
        id="lift-not-above-freeze-level",
    ),
    pytest.param(
        "checkout-freeze",
        _set("spec.slos.names", ["checkout-latency"]),
        "exactly one of names or selector",
        id="slos-names-and-selector",
    ),
    pytest.param(
        "checkout-freeze",
        _set("spec.freeze.when", [{"budgetRemainingBelow": 5, "alertFiring": "page"}]),
        "exactly one of budgetRemainingBelow or alertFiring",
        id="condition-with-two-kinds",
    ),
    pytest.param(
        "checkout-freeze",
        _set("spec.freeze.when", []),
        "spec.freeze.when",
        id="no-freeze-condition",
    ),
    pytest.param(
        "checkout-freeze",
        _set("spec.mode", "argocd"),
        "scope.kinds must fit the mode",
        id="argocd-mode-with-deployments",
    ),
    pytest.param(
        "checkout-freeze",
        _set("spec.lift.holdFor", "1 hour"),
        "spec.lift.holdFor",
        id="hold-for-not-a-duration",
    ),
    pytest.param(
        "checkout-freeze",
        _set("spec.scope.selector.matchExpressions", [{"key": "a", "operator": "In"}]),
        "In and NotIn need at least one value",
        id="in-without-values",
    ),
    pytest.param(
        "checkout-freeze",
        _set("spec.scope.kinds", ["CronJob"]),
        "spec.scope.kinds",
        id="unknown-workload-kind",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "reason"), INVALID)
def test_invalid_document_is_refused_by_crd_and_model(
    name: str, mutate: Mutation, reason: str
) -> None:
    document = copy.deepcopy(example(name))
    mutate(document)
    kind = document["kind"]

    errors = crd_schema(kind).errors(document)

    assert any(reason in error for error in errors), errors
    with pytest.raises(pydantic.ValidationError):
        MODELS[kind].model_validate(document)


def test_composite_component_named_twice_is_refused() -> None:
    """A map list keyed by slo: the API server refuses a duplicate component."""
    document = example("checkout-availability")
    document["spec"]["indicator"] = {
        "composite": {"components": [{"slo": "a"}, {"slo": "a", "weight": 2}]}
    }

    errors = crd_schema("SLODefinition").errors(document)

    assert errors == [
        "spec.indicator.composite.components: duplicate entries in a list of type map"
    ]
    with pytest.raises(pydantic.ValidationError):
        SLODefinition.model_validate(document)


def test_defaults_match_the_models() -> None:
    """Fields left out get the same value from the API server as from the model."""
    policy = crd_schema("SLAPolicy").schema["properties"]["spec"]["properties"]
    slo = crd_schema("SLODefinition").schema["properties"]["spec"]["properties"]
    model_policy = SLAPolicy.model_validate(example("checkout-freeze")).spec

    assert slo["warningBelow"]["default"] == 25
    assert slo["budgetingMethod"]["default"] == "Occurrences"
    assert policy["combine"]["default"] == model_policy.combine == "any"
    assert policy["mode"]["default"] == "annotate"
    assert policy["dryRun"]["default"] is False
    assert policy["freeze"]["properties"]["onNoData"]["default"] == "keep"
    # 30 minutes, the model's 1800 seconds.
    assert policy["lift"]["properties"]["holdFor"]["default"] == "30m"
