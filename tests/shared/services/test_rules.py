"""Recording rules and burn-rate alerts: their shape, and what they fire on.

The rules are run by ``promtool test rules`` (Prometheus 2.42) on input series
written here on a one-minute grid. Series start at 0 and every window is whole
minutes, so ``increase()`` is exact and each expected ratio below is plain
arithmetic: ``(bad(t) − bad(t − w)) / (total(t) − total(t − w))``, a window that
reaches back before the first sample counting from it (a counter starting at 0 is
not extrapolated).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from sla.model.slo import SLODefinition
from sla.runtime.rules_command import dump
from sla.services.rules import (
    ALERT_NAME,
    build_rules,
    one_series,
    prometheus_rules,
    rules_file,
)
from sla.specs import load_text
from tests.support.prometheus import find_binary

API_SLO = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {name: api-availability, namespace: shop}
spec:
  service: api
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      bad: {metric: 'http_requests_total{job="api",code=~"5.."}'}
      total: {metric: 'http_requests_total{job="api"}'}
  alerting: {preset: google}
"""

GOOD_SERIES = 'http_requests_total{job="api",code="200"}'
BAD_SERIES = 'http_requests_total{job="api",code="500"}'
API_LABELS = {"namespace": "shop", "service": "api", "slo": "api-availability"}

ALLOWED = Fraction(1, 1000)  # 1 − 99.9 %


@dataclass(frozen=True)
class Row:
    """A row of the google table at 30 days (DESIGN.md), windows in minutes."""

    severity: str
    factor: Fraction
    long: int
    short: int
    long_text: str
    short_text: str
    lasts: str  # 30 days / factor

    def threshold(self) -> Fraction:
        return self.factor * ALLOWED


GOOGLE_30D = (
    Row("page", Fraction("14.4"), 60, 5, "1h", "5m", "2d2h"),
    Row("page", Fraction(6), 360, 30, "6h", "30m", "5d"),
    Row("ticket", Fraction(3), 1440, 120, "1d", "2h", "10d"),
    Row("ticket", Fraction(1), 4320, 360, "3d", "6h", "30d"),
)


def slos(*texts: str) -> list[SLODefinition]:
    loaded = load_text("---\n".join(texts))
    assert loaded.ok, [finding.describe() for finding in loaded.errors]
    return [obj for obj in loaded.objects if isinstance(obj, SLODefinition)]


def group_rules(text: str, **kwargs: Any) -> list[dict[str, Any]]:
    result = build_rules(slos(text), **kwargs)
    assert result.ok, result.errors
    rules: list[dict[str, Any]] = result.rules[0].group["rules"]
    return rules


# -- shape ------------------------------------------------------------------------


def test_records_total_bad_and_ratio_for_every_window_of_the_table() -> None:
    rules = group_rules(API_SLO)

    recorded = [(r["record"], r["labels"]["window"]) for r in rules if "record" in r]
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert recorded == [
        (name, window)
        for window in windows
        for name in (
            "sla_slo:total_events",
            "sla_slo:bad_events",
            "sla_slo:error_ratio",
        )
    ]
    assert all(r["labels"] | API_LABELS == r["labels"] for r in rules if "record" in r)


def test_error_ratio_divides_by_total_only_where_there_is_traffic() -> None:
    ratio = next(
        r for r in group_rules(API_SLO) if r["record"] == "sla_slo:error_ratio"
    )

    assert ratio["expr"] == (
        'sla_slo:bad_events{namespace="shop", slo="api-availability", window="5m"}\n'
        "/\n"
        '(sla_slo:total_events{namespace="shop", slo="api-availability", '
        'window="5m"} > 0)'
    )


def test_one_alert_per_row_compares_both_burn_rates_with_the_factor() -> None:
    alerts = [r for r in group_rules(API_SLO) if "alert" in r]

    assert [a["labels"]["severity"] for a in alerts] == [
        "page",
        "page",
        "ticket",
        "ticket",
    ]
    first = alerts[0]
    assert first["alert"] == ALERT_NAME
    assert "for" not in first
    assert first["expr"].splitlines() == [
        'max without (window) (sla_slo:error_ratio{namespace="shop", '
        'slo="api-availability", window="1h"}) / 0.001 > 14.4',
        "and",
        'max without (window) (sla_slo:error_ratio{namespace="shop", '
        'slo="api-availability", window="5m"}) / 0.001 > 14.4',
    ]
    assert first["labels"] == {
        "long_window": "1h",
        "namespace": "shop",
        "severity": "page",
        "short_window": "5m",
        "slo": "api-availability",
    }


def test_counting_good_events_records_bad_as_total_minus_good() -> None:
    text = API_SLO.replace(
        """bad: {metric: 'http_requests_total{job="api",code=~"5.."}'}""",
        """good: {metric: 'http_requests_total{job="api",code!~"5.."}'}""",
    )
    bad = next(r for r in group_rules(text) if r["record"] == "sla_slo:bad_events")

    assert bad["expr"].splitlines() == [
        'sla_slo:total_events{namespace="shop", slo="api-availability", window="5m"}',
        "- on ()",
        '(sum(increase(http_requests_total{job="api",code!~"5.."}[5m])) or vector(0))',
    ]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum(increase(a[5m]))", "sum(increase(a[5m]))"),
        ("sum(increase(a[5m])) - sum(increase(b[5m]))", None),
        ("increase(a[5m])", "sum(increase(a[5m]))"),
        ("sum by (job) (increase(a[5m]))", None),
    ],
    ids=["summed", "two-sums", "bare", "sum-by"],
)
def test_counting_expressions_are_summed_to_one_series(
    expr: str, expected: str | None
) -> None:
    assert one_series(expr) == (expected or f"sum({expr})")


def test_raw_indicator_records_its_ratio_without_nan() -> None:
    text = API_SLO.replace(
        API_SLO[API_SLO.index("  indicator:") : API_SLO.index("  alerting:")],
        "  indicator:\n    raw: {errorRatio: 'avg(errors_ratio[$window])'}\n",
    )
    ratio = next(r for r in group_rules(text) if r["record"] == "sla_slo:error_ratio")

    assert ratio["expr"] == "(avg(errors_ratio[5m]))\n>= 0"


def test_raised_windows_are_noted_and_a_window_reaching_its_long_one_is_an_error() -> (
    None
):
    seven_days = API_SLO.replace("window: 30d", "window: 7d")
    one_day = API_SLO.replace("window: 30d", "window: 1d")

    raised = build_rules(slos(seven_days))
    # Loading already refuses the 1d SLO; built from the model alone, the rules
    # refuse it too.
    assert not load_text(one_day).ok
    refused = build_rules([SLODefinition.model_validate(yaml.safe_load(one_day))])

    assert [note.message for note in raised.notes] == [
        "page row 14.4: short window 1m raised to 2m (two scrape intervals of 60s)"
    ]
    assert not refused.rules
    assert refused.errors[0].slo == "shop/api-availability"
    assert "short window 2m reaches long window 2m" in refused.errors[0].message


def test_spec_text_cannot_run_as_a_template_and_odd_labels_are_left_off() -> None:
    text = API_SLO.replace(
        "  service: api\n",
        "  service: api\n"
        "  description: 'see {{ .Labels }}'\n"
        "  labels: {team: '{{ $value }}', app.kubernetes.io/name: api, slo: x}\n",
    )
    result = build_rules(slos(text))

    alert = next(r for r in result.rules[0].group["rules"] if "alert" in r)
    assert alert["labels"]["team"] == '{{ "{{" }} $value }}'
    # The spec's own "slo: x" label is left off; the SLO's name stays.
    assert alert["labels"]["slo"] == "api-availability"
    assert alert["annotations"]["description"].endswith('see {{ "{{" }} .Labels }}')
    assert "spec.labels app.kubernetes.io/name, slo not put on the alerts" in (
        result.notes[0].message
    )


COMPONENT = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {{name: {name}, namespace: shop}}
spec:
  service: {name}
  objective: 99
  window: {window}
  indicator:
    ratio:
      bad: {{metric: '{name}_errors_total'}}
      total: {{metric: '{name}_requests_total'}}
"""
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
      components: [{slo: cart, weight: 2}, {slo: pay}]
"""


def test_composite_sums_its_components_weighted_and_they_record_its_windows() -> None:
    result = build_rules(
        slos(
            COMPOSITE,
            COMPONENT.format(name="cart", window="30d"),
            COMPONENT.format(name="pay", window="7d"),
        )
    )

    by_name = {entry.slo.metadata.name: entry.group["rules"] for entry in result.rules}
    total = next(r for r in by_name["journey"] if r["record"] == "sla_slo:total_events")
    assert total["expr"] == (
        "sum(\n"
        '  2 * sla_slo:total_events{namespace="shop", slo="cart", window="5m"}\n'
        "  or\n"
        '  sla_slo:total_events{namespace="shop", slo="pay", window="5m"}\n'
        ")"
    )
    pay_windows = {r["labels"]["window"] for r in by_name["pay"] if "record" in r}
    # pay's own 7-day table (2m … 16h48m) plus the composite's 30-day one.
    assert {"5m", "1h", "3d", "2m", "16h48m"} <= pay_windows


def test_composite_without_its_components_is_an_error() -> None:
    result = build_rules(slos(COMPOSITE, COMPONENT.format(name="cart", window="30d")))

    assert [e.describe() for e in result.errors] == [
        "shop/journey: composite component shop/pay is not among the SLOs given, "
        "or has no rules"
    ]
    assert [entry.slo.metadata.name for entry in result.rules] == ["cart"]


def test_one_prometheus_rule_per_slo_in_its_namespace() -> None:
    other = API_SLO.replace("namespace: shop", "namespace: billing")
    objects = prometheus_rules(build_rules(slos(API_SLO, other)))

    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects] == [
        ("billing", "sla-api-availability"),
        ("shop", "sla-api-availability"),
    ]
    assert objects[0]["spec"]["groups"][0]["name"] == "sla/billing/api-availability"


# -- what fires: promtool test rules ----------------------------------------------

Counter = Callable[[int], int]


def notation(values: Sequence[int]) -> str:
    """Values per minute in promtool's expanding notation (``0+1000x360 …``)."""
    segments, index = [], 0
    while index < len(values):
        end = index
        step = values[index + 1] - values[index] if index + 1 < len(values) else 0
        while end + 1 < len(values) and values[end + 1] - values[end] == step:
            end += 1
        segments.append(f"{values[index]}+{step}x{end - index}")
        index = end + 1
    return " ".join(segments)


@dataclass(frozen=True)
class Traffic:
    """Cumulative requests and errors at minute ``t``, from minute 0 to ``minutes``."""

    total: Counter
    bad: Counter
    minutes: int

    def series(self) -> list[dict[str, str]]:
        span = range(self.minutes + 1)
        return [
            {
                "series": GOOD_SERIES,
                "values": notation([self.total(t) - self.bad(t) for t in span]),
            },
            {"series": BAD_SERIES, "values": notation([self.bad(t) for t in span])},
        ]

    def error_ratio(self, window: int, t: int) -> Fraction | None:
        start = max(t - window, 0)
        total = self.total(t) - self.total(start)
        if total == 0:
            return None
        return Fraction(self.bad(t) - self.bad(start), total)

    def exceeds(self, row: Row, t: int) -> bool:
        """Whether both windows' error ratios exceed the row's threshold at ``t``."""
        ratios = [self.error_ratio(w, t) for w in (row.long, row.short)]
        return all(r is not None and r > row.threshold() for r in ratios)

    def fires(self, row: Row, t: int) -> bool:
        """``exceeds``, at an instant where Prometheus' floats cannot disagree."""
        threshold = row.threshold()
        ratios = [self.error_ratio(w, t) for w in (row.long, row.short)]
        reached = all(r is not None and r >= threshold for r in ratios)
        # Floating point could decide a tie either way: keep the tests off ties that
        # would decide whether the row fires.
        assert not (reached and threshold in ratios), (row, t)
        return self.exceeds(row, t)


def expected_alert(row: Row, burn: Fraction) -> dict[str, Any]:
    factor = f"{float(row.factor):.4g}"
    return {
        "exp_labels": API_LABELS
        | {
            "severity": row.severity,
            "long_window": row.long_text,
            "short_window": row.short_text,
        },
        "exp_annotations": {
            # Prometheus' humanize writes numbers from 1 to 1000 with %.4g.
            "description": (
                f"Burn rate {float(burn):.4g} over {row.long_text}, and above "
                f"{factor} over {row.short_text} too. Objective 99.9 % over 30d "
                f"(allowed error ratio 0.001); at {factor}× the whole budget "
                f"lasts {row.lasts}."
            ),
            "summary": (
                "SLO shop/api-availability (service api) burns its error budget "
                f"more than {factor}× too fast over {row.long_text} and "
                f"{row.short_text}."
            ),
        },
    }


def alert_test(traffic: Traffic, t: int) -> dict[str, Any]:
    firing = [row for row in GOOGLE_30D if traffic.fires(row, t)]
    burns = [traffic.error_ratio(row.long, t) for row in firing]
    return {
        "eval_time": f"{t}m",
        "alertname": ALERT_NAME,
        "exp_alerts": [
            expected_alert(row, burn / ALLOWED)
            for row, burn in zip(firing, burns, strict=True)
            if burn is not None
        ],
    }


def ratio_test(traffic: Traffic, window: str, minutes: int, t: int) -> dict[str, Any]:
    ratio = traffic.error_ratio(minutes, t)
    labels = ", ".join(
        f'{k}="{v}"' for k, v in (API_LABELS | {"window": window}).items()
    )
    return {
        "expr": f'sla_slo:error_ratio{{window="{window}"}}',
        "eval_time": f"{t}m",
        "exp_samples": []
        if ratio is None
        else [{"labels": f"sla_slo:error_ratio{{{labels}}}", "value": float(ratio)}],
    }


def promtool_test(
    tmp_path: Path,
    groups: dict[str, Any],
    tests: list[dict[str, Any]],
    *,
    order: Sequence[str] = (),
) -> None:
    (tmp_path / "rules.yaml").write_text(dump(groups))
    unit: dict[str, Any] = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    if order:
        unit["group_eval_order"] = list(order)
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(unit))
    finished = subprocess.run(
        [find_binary("promtool"), "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr


def api_rules() -> dict[str, Any]:
    return rules_file(build_rules(slos(API_SLO)))


# Six clean hours at 1000 requests a minute, then two hours at 2 % errors (20 a
# minute): a burn of 2 % / 0.1 % = 20.
HEALTHY, BURST, RATE, ERRORS = 360, 120, 1000, 20
BURST_TRAFFIC = Traffic(
    total=lambda t: RATE * t,
    bad=lambda t: ERRORS * min(max(t - HEALTHY, 0), BURST),
    minutes=HEALTHY + BURST + 60,
)
# k minutes into the burst the 1h window holds 20k errors in 60 000 requests, above
# 14.4 × 0.001 once 20k > 864: k = 44. The 5m window (100 in 5000, 2 %) is above
# it from k = 4.
FIRST_FAST_PAGE = HEALTHY + 44


@pytest.mark.prometheus
def test_two_percent_errors_fire_the_fast_page_row_at_the_expected_minute(
    tmp_path: Path,
) -> None:
    fast_page = GOOGLE_30D[0]
    assert not BURST_TRAFFIC.fires(fast_page, FIRST_FAST_PAGE - 1)
    assert BURST_TRAFFIC.fires(fast_page, FIRST_FAST_PAGE)
    # Before, at, and after the fast page fires; then ten minutes after the burst,
    # when the 5m window is clean again.
    times = [HEALTHY, 378, 379, FIRST_FAST_PAGE - 1, FIRST_FAST_PAGE, 470, 490]

    promtool_test(
        tmp_path,
        api_rules(),
        [
            {
                "interval": "1m",
                "input_series": BURST_TRAFFIC.series(),
                "alert_rule_test": [alert_test(BURST_TRAFFIC, t) for t in times],
                "promql_expr_test": [
                    ratio_test(BURST_TRAFFIC, "1h", 60, FIRST_FAST_PAGE),
                    ratio_test(BURST_TRAFFIC, "5m", 5, FIRST_FAST_PAGE),
                    ratio_test(BURST_TRAFFIC, "3d", 4320, FIRST_FAST_PAGE),
                ],
            }
        ],
    )


def test_burst_arithmetic_fires_rows_in_the_order_of_their_thresholds() -> None:
    """The test's own arithmetic, checked: each row first fires where it should."""

    def first(row: Row) -> int:
        return next(t for t in range(1, 600) if BURST_TRAFFIC.exceeds(row, t))

    # 3d/6h (0.001): 20k / (360 000 + 1000k) > 0.001 from k = 19; 1d/2h (0.003) from
    # 17k > 1080, k = 64; 6h/30m (0.006): 20k / 360 000 > 0.006 from k = 109.
    assert [first(row) for row in GOOGLE_30D] == [404, 469, 424, 379]


@pytest.mark.prometheus
def test_steady_errors_within_budget_fire_nothing(tmp_path: Path) -> None:
    # 1 error in 2000 requests a minute: 0.05 %, half the allowed ratio.
    steady = Traffic(total=lambda t: 2000 * t, bad=lambda t: t, minutes=480)

    promtool_test(
        tmp_path,
        api_rules(),
        [
            {
                "interval": "1m",
                "input_series": steady.series(),
                "alert_rule_test": [
                    {"eval_time": f"{t}m", "alertname": ALERT_NAME, "exp_alerts": []}
                    for t in (5, 60, 240, 480)
                ],
                "promql_expr_test": [ratio_test(steady, "1h", 60, 240)],
            }
        ],
    )


@pytest.mark.prometheus
def test_zero_traffic_records_no_ratio_and_fires_nothing(tmp_path: Path) -> None:
    idle = Traffic(total=lambda t: 0, bad=lambda t: 0, minutes=120)
    total_labels = ", ".join(
        f'{k}="{v}"' for k, v in (API_LABELS | {"window": "1h"}).items()
    )

    promtool_test(
        tmp_path,
        api_rules(),
        [
            {
                "interval": "1m",
                "input_series": idle.series(),
                "alert_rule_test": [
                    {"eval_time": f"{t}m", "alertname": ALERT_NAME, "exp_alerts": []}
                    for t in (5, 60, 120)
                ],
                "promql_expr_test": [
                    ratio_test(idle, "5m", 5, 60),
                    ratio_test(idle, "1h", 60, 120),
                    {
                        "expr": 'sla_slo:total_events{window="1h"}',
                        "eval_time": "120m",
                        "exp_samples": [
                            {
                                "labels": f"sla_slo:total_events{{{total_labels}}}",
                                "value": 0,
                            }
                        ],
                    },
                ],
            }
        ],
    )


@pytest.mark.prometheus
def test_no_error_series_at_all_reads_as_no_errors(tmp_path: Path) -> None:
    clean = Traffic(total=lambda t: 1000 * t, bad=lambda t: 0, minutes=60)
    good_only = clean.series()[:1]

    promtool_test(
        tmp_path,
        api_rules(),
        [
            {
                "interval": "1m",
                "input_series": good_only,
                "promql_expr_test": [ratio_test(clean, "5m", 5, 60)],
            }
        ],
    )


@pytest.mark.prometheus
def test_composite_ratio_is_the_weighted_sum_of_component_events(
    tmp_path: Path,
) -> None:
    result = build_rules(
        slos(
            COMPOSITE,
            COMPONENT.format(name="cart", window="30d"),
            COMPONENT.format(name="pay", window="30d"),
        )
    )
    # At 30m, over 5m: cart 10 errors in 500 requests, pay 40 in 1000. Weighted
    # (cart × 2): (2·10 + 40) / (2·500 + 1000) = 60 / 2000.
    labels = 'namespace="shop", service="shop", slo="journey", window="5m"'

    promtool_test(
        tmp_path,
        rules_file(result),
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": "cart_requests_total", "values": "0+100x30"},
                    {"series": "cart_errors_total", "values": "0+2x30"},
                    {"series": "pay_requests_total", "values": "0+200x30"},
                    {"series": "pay_errors_total", "values": "0+8x30"},
                ],
                "promql_expr_test": [
                    {
                        "expr": 'sla_slo:error_ratio{slo="journey", window="5m"}',
                        "eval_time": "30m",
                        "exp_samples": [
                            {
                                "labels": f"sla_slo:error_ratio{{{labels}}}",
                                "value": 60 / 2000,
                            }
                        ],
                    }
                ],
            }
        ],
        # Components first, as they would have been recorded a moment earlier.
        order=["sla/shop/cart", "sla/shop/pay", "sla/shop/journey"],
    )
