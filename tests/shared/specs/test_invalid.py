"""Invalid documents are errors at the source's own field path, with the value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sla.specs import Finding, load_paths, load_text

NATIVE = """
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {{name: api}}
spec:
  service: api
  objective: {objective}
  window: {window}
  indicator:
{indicator}
{extra}
"""
RATIO = "    ratio: {bad: {metric: errors_total}, total: {metric: requests_total}}"


def _native(
    *,
    objective: str = "99.9",
    window: str = "30d",
    indicator: str = RATIO,
    extra: str = "",
) -> str:
    return NATIVE.format(
        objective=objective, window=window, indicator=indicator, extra=extra
    )


def _only_error(text: str) -> Finding:
    result = load_text(text, name="slo.yaml")
    assert len(result.errors) == 1, [e.describe() for e in result.errors]
    assert result.objects == []
    return result.errors[0]


@pytest.mark.parametrize(
    "objective", ["100", "0"], ids=["objective-100", "objective-0"]
)
def test_native_objective_out_of_range_names_the_field(objective: str) -> None:
    error = _only_error(_native(objective=objective))

    assert error.field == "spec.objective"
    assert error.value == int(objective)
    assert "(0, 100)" in error.message
    assert error.document == "document 1 (SLODefinition api)"


def test_native_good_and_bad_together_is_an_error_at_the_ratio() -> None:
    both = (
        "    ratio: {good: {metric: ok_total}, bad: {metric: errors_total}, "
        "total: {metric: requests_total}}"
    )
    error = _only_error(_native(indicator=both))

    assert error.field == "spec.indicator.ratio"
    assert "exactly one of good or bad" in error.message


def test_native_without_indicator_is_an_error() -> None:
    error = _only_error(_native(indicator="    {}"))

    assert error.field == "spec.indicator"
    assert "exactly one indicator kind" in error.message


def test_native_unknown_field_is_named() -> None:
    error = _only_error(_native(extra="  objectve: 99"))

    assert error.field == "spec.objectve"
    assert error.message == "unknown field"
    assert error.value == 99


def test_native_bad_window_shows_the_value() -> None:
    error = _only_error(_native(window="30x"))

    assert error.field == "spec.window"
    assert error.value == "30x"
    assert error.line == 8


def test_native_unknown_time_zone_is_named() -> None:
    error = _only_error(_native(window="month", extra="  timeZone: Mars/Olympus"))

    assert error.field == "spec.timeZone"
    assert error.value == "Mars/Olympus"
    assert "IANA" in error.message


OPENSLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {{name: web}}
spec:
  service: web
  indicator:
    metadata: {{name: web-ok}}
    spec:
      ratioMetric:
{ratio}
  timeWindow: [{window}]
  budgetingMethod: Occurrences
  objectives: [{{target: {target}}}]
"""
PROMETHEUS_QUERY = "{{metricSource: {{type: Prometheus, spec: {{query: '{}'}}}}}}"
GOOD_TOTAL = (
    f"        good: {PROMETHEUS_QUERY.format('ok[{{.window}}]')}\n"
    f"        total: {PROMETHEUS_QUERY.format('all[{{.window}}]')}"
)


def _openslo(
    *,
    ratio: str = GOOD_TOTAL,
    window: str = "{duration: 28d, isRolling: true}",
    target: str = "0.99",
) -> str:
    return OPENSLO.format(ratio=ratio, window=window, target=target)


def test_openslo_target_of_one_is_reported_at_target_with_the_written_value() -> None:
    error = _only_error(_openslo(target="1.0"))

    assert error.field == "spec.objectives[0].target"
    assert error.value == 1.0
    assert "(0, 100)" in error.message


def test_openslo_target_of_zero_is_reported_at_target() -> None:
    error = _only_error(_openslo(target="0"))

    assert error.field == "spec.objectives[0].target"
    assert error.value == 0


def test_openslo_good_and_bad_together_is_an_error() -> None:
    ratio = GOOD_TOTAL + f"\n        bad: {PROMETHEUS_QUERY.format('e[{{.window}}]')}"
    error = _only_error(_openslo(ratio=ratio))

    assert error.field == "spec.indicator.spec.ratioMetric"
    assert "exactly one of good or bad" in error.message


def test_openslo_bad_duration_is_reported() -> None:
    error = _only_error(_openslo(window="{duration: 30x, isRolling: true}"))

    assert error.field == "spec.timeWindow[0].duration"
    assert error.value == "30x"


def test_openslo_unknown_calendar_zone_is_reported_at_time_zone() -> None:
    window = "{duration: 1M, isRolling: false, calendar: {timeZone: Mars/Olympus}}"
    error = _only_error(_openslo(window=window))

    assert error.field == "spec.timeWindow[0].calendar.timeZone"
    assert error.value == "Mars/Olympus"


def test_openslo_unknown_field_is_an_error() -> None:
    text = _openslo().replace("budgetingMethod:", "budgetMethod:")

    result = load_text(text)

    assert [e.field for e in result.errors] == ["spec.budgetMethod"]


def test_openslo_without_indicator_is_an_error() -> None:
    text = _openslo().split("  indicator:")[0] + (
        "  timeWindow: [{duration: 28d, isRolling: true}]\n"
        "  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.99}]\n"
    )

    error = _only_error(text)

    assert error.field == "spec"
    assert "no indicator" in error.message


def test_openslo_unknown_indicator_ref_is_an_error() -> None:
    text = _openslo().split("  indicator:")[0] + (
        "  indicatorRef: missing-sli\n"
        "  timeWindow: [{duration: 28d, isRolling: true}]\n"
        "  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.99}]\n"
    )

    error = _only_error(text)

    assert error.field == "spec.indicatorRef"
    assert error.value == "missing-sli"


def test_openslo_unsupported_version_is_reported() -> None:
    error = _only_error(
        "apiVersion: openslo/v0.1.0-beta\nkind: SLO\nmetadata: {name: x}\n"
    )

    assert error.field == "apiVersion"
    assert "unsupported OpenSLO version" in error.message


def test_sloth_objective_of_100_is_reported_at_the_slo() -> None:
    text = """
version: prometheus/v1
service: api
slos:
  - name: ok
    objective: 100
    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}
"""
    error = _only_error(text)

    assert error.field == "slos[0].objective"
    assert error.value == 100


LONG_NINES = "99.9999999999999999999"
"""Below 100 as written; as a double, 100 - 1e-19 is 100.0 (a double near 100 is
only exact to about 1.4e-14)."""


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            "version: prometheus/v1\nservice: api\nslos:\n  - name: ok\n"
            f'    objective: "{LONG_NINES}"\n'
            "    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n",
            "slos[0].objective",
        ),
        (
            "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjective\n"
            f'metadata: {{name: x}}\nspec:\n  target: "{LONG_NINES}"\n'
            "  window: 2w\n  indicator: {bool_gauge: {metric: probe_success}}\n",
            "spec.target",
        ),
        (
            _native(objective=f'"{LONG_NINES}"'),
            "spec.objective",
        ),
    ],
    ids=["sloth", "pyrra", "native"],
)
def test_quoted_objective_that_is_100_as_a_number_is_an_error(
    text: str, field: str
) -> None:
    error = _only_error(text)

    assert error.file == "slo.yaml"
    assert error.field == field
    assert error.value == LONG_NINES
    assert f"{LONG_NINES} is 100.0 once written as a number" in error.message


def test_openslo_quoted_target_that_is_100_as_a_number_is_an_error() -> None:
    # 0.999999999999999999999 as a fraction is 99.9999999999999999999 percent.
    error = _only_error(_openslo(target='"0.999999999999999999999"'))

    assert error.field == "spec.objectives[0].target"
    assert error.value == "0.999999999999999999999"
    assert "is 100.0 once written as a number" in error.message


def test_quoted_objective_with_many_digits_is_carried_exactly() -> None:
    # 12 nines after the point: 1e-12 below 100, a distinct double.
    text = _native(objective='"99.999999999999"')

    result = load_text(text, name="slo.yaml")

    assert result.errors == []
    assert result.objects[0].spec.objective == Decimal("99.999999999999")


def test_pyrra_target_zero_is_reported_with_the_string_written() -> None:
    text = """
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: x}
spec:
  target: "0"
  window: 2w
  indicator: {bool_gauge: {metric: probe_success}}
"""
    error = _only_error(text)

    assert error.field == "spec.target"
    assert error.value == "0"


def test_unknown_kind_is_an_error() -> None:
    error = _only_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")

    assert error.field == "kind"
    assert error.value == "ConfigMap"


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: sla.dev/v1alpha1\nkind: [SLODefinition\nspec: {}\n")

    result = load_paths([path])

    assert len(result.errors) == 1
    assert result.errors[0].line == 3
    assert "YAML syntax error" in result.errors[0].message


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")

    result = load_paths([path])

    assert [e.message for e in result.errors] == ["empty file: no YAML documents"]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    result = load_paths([tmp_path / "absent.yaml"])

    assert [e.message for e in result.errors] == ["no such file or directory"]


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: caf\xe9\n")

    result = load_paths([path])

    assert result.errors[0].message.startswith("not UTF-8 text")
