"""``sla rules``: exit codes, notes, and output that promtool and the operator accept.

promtool (Debian's prometheus package) checks every rules file written here: the
repository's examples and every SLO of the shared corpus (``../shared/corpus``) that
converts. PrometheusRule objects are checked against the Prometheus Operator's CRD
schema from the corpus, as the API server would check them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sla.cli import main
from tests.deploy.manifests import CORPUS, CRD_CORPUS, REPO_ROOT, load_documents
from tests.deploy.openapi import CrdSchema
from tests.support.prometheus import find_binary

EXAMPLES = REPO_ROOT / "examples"
FORMAT_FOLDERS = ("openslo", "sloth", "pyrra", "slo-generator")
# Corpus files whose queries are not PromQL: rules from them load only where their
# query language runs.
NOT_PROMQL = {
    # MetricsQL (histogram_share, rate without a range) runs on VictoriaMetrics only.
    "examples__victoria-metrics.yml",
}
PROMETHEUS_RULE_CRD = (
    CRD_CORPUS
    / "prometheus-operator__prometheus-operator"
    / "example__prometheus-operator-crd__monitoring.coreos.com_prometheusrules.yaml"
)

PYRRA_OPERATOR_SLO = (
    CORPUS
    / "pyrra"
    / "pyrra-dev__pyrra"
    / "examples__kubernetes__manifests__slos__slo-prometheus-operator-http-errors.yaml"
)

COMPOSITE = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {name: journey, namespace: shop}
spec:
  service: shop
  objective: 99
  window: 30d
  indicator:
    composite:
      components: [{slo: checkout-availability}, {slo: payments}]
"""


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["rules", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def promtool_check(paths: list[Path]) -> None:
    finished = subprocess.run(
        [find_binary("promtool"), "check", "rules", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr


def corpus_files() -> list[Path]:
    return sorted(
        path
        for folder in FORMAT_FOLDERS
        for path in (CORPUS / folder).rglob("*")
        if path.suffix in (".yaml", ".yml") and path.name not in NOT_PROMQL
    )


def prometheus_rule_schema() -> CrdSchema:
    (crd,) = (
        doc
        for doc in load_documents(PROMETHEUS_RULE_CRD)
        if doc.get("kind") == "CustomResourceDefinition"
    )
    # The operator's CRD uses CEL functions of the API server that a plain CEL
    # evaluator lacks: its OpenAPI schema is what is checked.
    return CrdSchema(crd, "v1", cel=False)


@pytest.mark.prometheus
def test_rules_of_the_examples_pass_promtool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, EXAMPLES, "-o", "rules")

    path = tmp_path / "rules.yaml"
    path.write_text(out)
    assert code == 0
    assert out.startswith("# Written by `sla rules` from ")
    groups = yaml.safe_load(out)["groups"]
    assert [group["name"] for group in groups] == [
        "sla/shop/checkout-availability",
        "sla/shop/checkout-latency",
    ]
    promtool_check([path])


@pytest.mark.prometheus
def test_rules_of_every_converted_corpus_slo_pass_promtool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written: list[Path] = []
    for index, source in enumerate(corpus_files()):
        code, out, err = run(capsys, source, "-o", "rules")
        if code != 0:
            # Files that do not convert are test_corpus's business; one that
            # converts must get rules.
            assert "error: " in err and " SLO(s) without rules" not in err, err
            continue
        path = tmp_path / f"{index:03d}-{source.name}"
        path.write_text(out)
        written.append(path)

    names = {path.name.split("-", 1)[1] for path in written}
    assert {
        "examples__getting-started.yml",  # Sloth
        "examples__caddy-response-latency.yaml",  # Pyrra, a latency histogram
        "examples__prometheus-probe-success.yaml",  # Pyrra, a bool gauge
    } <= names
    assert len(written) >= 30
    promtool_check(written)


def test_prometheus_rules_validate_against_the_operator_crd(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys,
        EXAMPLES,
        PYRRA_OPERATOR_SLO,
    )

    documents: list[dict[str, Any]] = list(yaml.safe_load_all(out))
    assert code == 0
    assert [
        (doc["metadata"]["namespace"], doc["metadata"]["name"]) for doc in documents
    ] == [
        ("monitoring", "sla-prometheus-operator-http-errors"),
        ("shop", "sla-checkout-availability"),
        ("shop", "sla-checkout-latency"),
    ]
    schema = prometheus_rule_schema()
    assert {doc["kind"] for doc in documents} == {"PrometheusRule"}
    assert [schema.errors(doc) for doc in documents] == [[], [], []]
    assert documents[1]["metadata"]["labels"] == {
        "app": "checkout",
        "app.kubernetes.io/managed-by": "sla",
    }


def test_output_is_the_same_whatever_the_order_of_the_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = sorted(EXAMPLES.glob("checkout-*.yaml"))

    _, forward, _ = run(capsys, *files)
    _, backward, _ = run(capsys, *reversed(files))

    strip = "\n".join(line for line in forward.splitlines() if not line.startswith("#"))
    assert strip == "\n".join(
        line for line in backward.splitlines() if not line.startswith("#")
    )


def test_raised_windows_are_warned_on_stderr_and_noted_in_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weekly = tmp_path / "weekly.yaml"
    text = (EXAMPLES / "checkout-availability.yaml").read_text()
    weekly.write_text(text.replace("window: 28d", "window: 7d"))

    code, out, err = run(capsys, weekly, "-o", "rules")
    faster_scrapes = run(capsys, weekly, "-o", "rules", "--scrape-interval", "30")

    note = (
        "shop/checkout-availability: page row 14.4: short window 1m raised to 2m "
        "(two scrape intervals of 60s)"
    )
    assert code == 0
    assert f"warning: {note}" in err
    assert f"# note: {note}\n" in out
    assert faster_scrapes[0] == 0
    assert "raised" not in faster_scrapes[2]
    assert "interval: 30s" in faster_scrapes[1]


def test_composites_get_rules_from_their_components(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payments = (EXAMPLES / "checkout-availability.yaml").read_text()
    payments = payments.replace("name: checkout-availability", "name: payments")
    (tmp_path / "payments.yaml").write_text(payments)
    (tmp_path / "journey.yaml").write_text(COMPOSITE)

    code, out, _ = run(capsys, tmp_path, EXAMPLES, "-o", "rules")

    groups = {group["name"] for group in yaml.safe_load(out)["groups"]}
    assert code == 0
    assert "sla/shop/journey" in groups


def test_a_composite_missing_a_component_writes_nothing_and_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "journey.yaml").write_text(COMPOSITE)

    code, out, err = run(capsys, tmp_path, EXAMPLES)

    assert code == 1
    assert out == ""
    assert (
        "error: shop/journey: composite component shop/payments is not among the "
        "SLOs given, or has no rules"
    ) in err
    assert "1 SLO(s) without rules: nothing written" in err


def test_files_without_slos_exit_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, EXAMPLES / "checkout-freeze.yaml")

    assert code == 1
    assert out == ""
    assert "no SLODefinition in the given files" in err


def test_invalid_scrape_interval_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["rules", str(EXAMPLES), "--scrape-interval", "0"])

    assert exit_info.value.code == 2
    assert "'0' is not a positive whole number" in capsys.readouterr().err
