"""Each format's fields land where they should in the native model."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sla.model.slo import SLODefinition
from sla.specs import LoadResult, load_paths, load_text

FIXTURES = Path(__file__).parent / "fixtures"


def _slos(result: LoadResult) -> dict[str, SLODefinition]:
    assert result.errors == []
    return {
        obj.metadata.name: obj
        for obj in result.objects
        if isinstance(obj, SLODefinition)
    }


def _note_fields(result: LoadResult) -> list[str]:
    return [note.field for note in result.notes]


def test_openslo_objectives_become_one_slo_each_named_after_them() -> None:
    slos = _slos(load_paths([FIXTURES / "openslo-checkout.yaml"]))

    assert sorted(slos) == ["checkout-contract", "checkout-internal"]
    assert slos["checkout-internal"].spec.objective == Decimal("99.9")
    assert slos["checkout-contract"].spec.objective == Decimal("99.5")


def test_openslo_calendar_month_keeps_its_time_zone() -> None:
    slo = _slos(load_paths([FIXTURES / "openslo-checkout.yaml"]))["checkout-internal"]

    assert str(slo.spec.window) == "month"
    assert slo.spec.time_zone == "Europe/Berlin"
    assert slo.metadata.namespace == "shop"


def test_openslo_indicator_ref_resolves_and_rates_become_increases() -> None:
    slo = _slos(load_paths([FIXTURES / "openslo-checkout.yaml"]))["checkout-internal"]

    ratio = slo.spec.indicator.ratio
    assert ratio is not None and ratio.good is not None
    assert (
        ratio.good.expr
        == 'sum(increase(checkout_requests_total{code!~"5.."}[$window]))'
    )
    assert ratio.total.expr == "sum(increase(checkout_requests_total[$window]))"


def test_openslo_burnrate_conditions_become_rows_with_a_twelfth_short_window() -> None:
    slo = _slos(load_paths([FIXTURES / "openslo-checkout.yaml"]))["checkout-internal"]

    rows = slo.spec.alerting.rows
    assert rows is not None
    # 1h / 12 = 5m; 3d / 12 = 6h.
    assert [(r.severity, r.long_window, r.short_window, r.factor) for r in rows] == [
        ("page", 3600, 300, 14.4),
        ("ticket", 3 * 86400, 6 * 3600, 1.0),
    ]


def test_openslo_timeslices_map_slice_target_and_length() -> None:
    text = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: web}
spec:
  service: web
  indicator:
    metadata: {name: web-ok}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(web_ok_total)'}}}
        total: {metricSource: {type: Prometheus, spec: {query: web_total}}}
  timeWindow: [{duration: 4w, isRolling: true}]
  budgetingMethod: Timeslices
  objectives: [{target: 0.995, timeSliceTarget: 0.95, timeSliceWindow: 5m}]
"""
    slo = _slos(load_text(text))["web"]

    assert str(slo.spec.window) == "28d"
    assert slo.spec.timeslice is not None
    assert slo.spec.timeslice.length == 300
    assert slo.spec.timeslice.target == Decimal("95")
    ratio = slo.spec.indicator.ratio
    assert ratio is not None and ratio.good is not None
    assert ratio.good.expr == "sum(increase(web_ok_total[$window]))"
    assert ratio.total.metric == "web_total"


def test_sloth_events_become_counts_over_the_window() -> None:
    result = load_paths([FIXTURES / "sloth-payments.yaml"])
    slo = _slos(result)["payments-requests-availability"]

    ratio = slo.spec.indicator.ratio
    assert ratio is not None and ratio.bad is not None
    assert (
        ratio.bad.expr == 'sum(increase(payment_requests_total{code=~"5.."}[$window]))'
    )
    assert ratio.total.expr == "sum(increase(payment_requests_total[$window]))"
    assert slo.spec.objective == Decimal("99.95")
    assert slo.spec.labels == {"team": "billing"}


def test_sloth_period_is_thirty_days_and_the_notes_say_so() -> None:
    result = load_paths([FIXTURES / "sloth-payments.yaml"])
    slo = _slos(result)["payments-requests-availability"]

    assert str(slo.spec.window) == "30d"
    assert any("Sloth's default SLO period" in n.message for n in result.notes)


def test_sloth_page_only_alerting_keeps_the_google_page_rows() -> None:
    slo = _slos(load_paths([FIXTURES / "sloth-payments.yaml"]))[
        "payments-requests-availability"
    ]

    rows = slo.spec.alerting.rows
    assert rows is not None
    assert [(r.severity, r.long_window, r.short_window, r.factor) for r in rows] == [
        ("page", 3600, 300, 14.4),
        ("page", 6 * 3600, 30 * 60, 6.0),
    ]


def test_sloth_raw_query_fills_the_window_and_all_alerts_disabled_is_no_rows() -> None:
    slo = _slos(load_paths([FIXTURES / "sloth-payments.yaml"]))["payments-queue-health"]

    assert slo.spec.indicator.raw is not None
    assert slo.spec.indicator.raw.error_ratio == (
        "avg_over_time(payment_queue_unhealthy[$window])"
    )
    assert slo.spec.alerting.rows == []


def test_sloth_both_severities_is_the_google_preset() -> None:
    text = """
version: prometheus/v1
service: api
slos:
  - name: ok
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(e[{{.window}}]))
        total_query: sum(rate(t[{{.window}}]))
"""
    slo = _slos(load_text(text))["api-ok"]

    assert slo.spec.alerting.preset == "google"


def test_pyrra_latency_bucket_becomes_latency_indicator() -> None:
    slo = _slos(load_paths([FIXTURES / "pyrra-search.yaml"]))["search-latency"]

    latency = slo.spec.indicator.latency
    assert latency is not None
    assert latency.histogram == 'search_duration_seconds{job="search"}'
    assert latency.threshold == 0.25
    assert slo.spec.objective == Decimal("99.5")
    assert str(slo.spec.window) == "14d"
    assert slo.spec.alerting.preset == "pyrra"


def test_pyrra_ratio_grouping_is_reported_and_disabled_alerting_is_no_rows() -> None:
    result = load_paths([FIXTURES / "pyrra-search.yaml"])
    slo = _slos(result)["search-errors"]

    ratio = slo.spec.indicator.ratio
    assert ratio is not None and ratio.bad is not None
    assert ratio.bad.metric == 'search_requests_total{job="search",code=~"5.."}'
    assert slo.spec.alerting.rows == []
    assert "spec.indicator.ratio.grouping" in _note_fields(result)


def test_slo_generator_windows_and_rows_come_from_the_shared_config() -> None:
    result = load_paths(
        [FIXTURES / "slogenerator-api.yaml", FIXTURES / "slogenerator-config.yaml"]
    )
    slo = _slos(result)["api-availability"]

    # Longest step: 2_592_000 s = 30 days; alerting steps 1h (÷12 = 5m) and 12h (1h).
    assert str(slo.spec.window) == "30d"
    rows = slo.spec.alerting.rows
    assert rows is not None
    assert [(r.long_window, r.short_window, r.factor) for r in rows] == [
        (3600, 300, 9.0),
        (43200, 3600, 3.0),
    ]
    assert slo.spec.objective == Decimal("99.5")
    assert slo.spec.service == "api"
    assert slo.spec.datasource is not None
    assert slo.spec.datasource.url == "http://prometheus.monitoring:9090"


def test_slo_generator_without_config_is_28_days_and_says_so() -> None:
    result = load_paths([FIXTURES / "slogenerator-api.yaml"])
    slo = _slos(result)["api-availability"]

    assert str(slo.spec.window) == "28d"
    assert any("no slo-generator shared config" in n.message for n in result.notes)
    ratio = slo.spec.indicator.ratio
    assert ratio is not None and ratio.good is not None
    assert ratio.good.metric == 'api_requests_total{code=~"2.."}'
    assert ratio.total.metric == "api_requests_total"


def test_slo_generator_query_sli_becomes_raw_error_ratio() -> None:
    text = """
apiVersion: sre.google.com/v2
kind: ServiceLevelObjective
metadata: {name: api-sli}
spec:
  backend: prometheus
  method: query_sli
  service_level_indicator:
    expression: sum(rate(ok[window])) / sum(rate(all[window]))
  goal: 0.99
"""
    slo = _slos(load_text(text))["api-sli"]

    assert slo.spec.indicator.raw is not None
    assert slo.spec.indicator.raw.error_ratio == (
        "1 - (sum(rate(ok[$window])) / sum(rate(all[$window])))"
    )


def test_slo_generator_placeholders_are_kept_and_reported() -> None:
    text = """
apiVersion: sre.google.com/v2
kind: ServiceLevelObjective
metadata: {name: env-slo}
spec:
  backend: prometheus
  method: good_bad_ratio
  service_level_indicator:
    filter_good: requests_total{env="${ENV}", code="200"}
    filter_valid: requests_total{env="${ENV}"}
  goal: 0.9
"""
    result = load_text(text)
    slo = _slos(result)["env-slo"]

    ratio = slo.spec.indicator.ratio
    assert ratio is not None and ratio.good is not None
    assert ratio.good.metric == 'requests_total{env="${ENV}", code="200"}'
    assert "spec.service_level_indicator.filter_good" in _note_fields(result)


def test_native_documents_load_as_they_are() -> None:
    result = load_paths([FIXTURES / "native-checkout.yaml"])

    assert result.errors == []
    assert [obj.kind for obj in result.objects] == ["SLODefinition", "SLAPolicy"]
