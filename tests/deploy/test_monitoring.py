"""The dashboard and the system's alerts: the design's metrics, valid PromQL.

promtool (Debian's prometheus package, which the test suite needs anyway) checks
the PrometheusRule's groups and every dashboard query, each written as a recording
rule with Grafana's variables filled in.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import REPO_ROOT, by_name, render

METRICS = {
    "sla_budget_remaining_percent",
    "sla_burn_rate",
    "sla_budget_status",
    "sla_freezes_active",
    "sla_calculations_total",
    "sla_calculation_duration_seconds",
    "sla_events_published_total",
    "sla_prometheus_queries_total",
}
# Grafana's variables, as Grafana would substitute them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$slo": ".*"}


def dashboard() -> dict[str, Any]:
    text = (REPO_ROOT / "monitoring" / "grafana-dashboard.json").read_text()
    return json.loads(text)


def dashboard_queries() -> list[str]:
    return [
        target["expr"]
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict[str, Any]]:
    rule = by_name(render("monitoring"), "PrometheusRule")["sla-system"]
    return [entry for group in rule["spec"]["groups"] for entry in group["rules"]]


def metric_names(expression: str) -> set[str]:
    names = set(re.findall(r"\bsla_[a-z_]+", expression))
    # Histograms are queried through their _bucket series.
    return {name.removesuffix("_bucket") for name in names}


def promtool_check(tmp_path: Path, groups: list[dict[str, Any]]) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_shows_every_metric_of_the_design() -> None:
    shown = set().union(*(metric_names(query) for query in dashboard_queries()))

    assert shown == METRICS


def test_dashboard_panels_have_unique_ids_and_a_datasource_variable() -> None:
    ids = [panel["id"] for panel in dashboard()["panels"]]
    variables = {entry["name"] for entry in dashboard()["templating"]["list"]}

    assert len(ids) == len(set(ids))
    assert variables == {"datasource", "slo"}


def test_dashboard_is_shipped_for_the_grafana_sidecar() -> None:
    config_map = by_name(render("monitoring"), "ConfigMap")["sla-grafana-dashboard"]

    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["sla.json"]) == dashboard()


def test_alerts_watch_the_system_itself() -> None:
    alerts = {rule["alert"]: rule for rule in alert_rules()}

    assert {
        "SLAEvaluationsLate",
        "SLAEventDeliveriesFailing",
        "SLAEventsPublishFailing",
        "SLAEnforcementFailing",
    } <= set(alerts)
    assert "sla_calculations_total" in alerts["SLAEvaluationsLate"]["expr"]
    assert "dev.sla.freeze.failed" in alerts["SLAEnforcementFailing"]["expr"]
    for rule in alerts.values():
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"]


@pytest.mark.prometheus
def test_alert_rules_pass_promtool(tmp_path: Path) -> None:
    rule = by_name(render("monitoring"), "PrometheusRule")["sla-system"]

    promtool_check(tmp_path, rule["spec"]["groups"])


@pytest.mark.prometheus
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = []
    for index, query in enumerate(dashboard_queries()):
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": query})

    promtool_check(tmp_path, [{"name": "dashboard", "rules": rules}])
