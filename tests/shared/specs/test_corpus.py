"""Every SLO spec of the shared corpus converts, or fails for its known reason.

The corpus sits beside the repository (``../shared/corpus`` from its root). Each
file is loaded on its own, converted to native YAML, loaded again, and must
give the same objects: the round trip loses nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sla.specs import load_paths, load_text, to_yaml

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
FORMAT_FOLDERS = ("openslo", "sloth", "pyrra", "slo-generator")

_ANY_TYPE = "spec.indicator.spec.ratioMetric.{}.metricSource.type"

# file name → (SLODefinitions it becomes, field paths of its errors).
EXPECTED: dict[str, tuple[int, tuple[str, ...]]] = {
    # OpenSLO/OpenSLO examples: metric sources of type "Any" are placeholders,
    # not Prometheus, and one threshold metric has no native form.
    "examples__budgeting-method__occurences-slo.yaml": (
        0,
        ("spec.indicator.spec.thresholdMetric",),
    ),
    "examples__budgeting-method__ratio-timeslices.yaml": (
        0,
        (_ANY_TYPE.format("good"), _ANY_TYPE.format("total")),
    ),
    # "1m" is one minute in OpenSLO (a month is "1M"): no native calendar window.
    "examples__budgeting-method__timeslices-slo.yaml": (
        0,
        (
            "spec.timeWindow[0].duration",
            _ANY_TYPE.format("good"),
            _ANY_TYPE.format("total"),
        ),
    ),
    "examples__treat-low-traffic-as-equally-important__timeslices-slo.yaml": (
        0,
        (_ANY_TYPE.format("good"), _ANY_TYPE.format("total")),
    ),
    "pkg__openslo__v1__examples__alert_conditions.yaml": (0, ()),
    "pkg__openslo__v1__examples__alert_notification_targets.yaml": (0, ()),
    "pkg__openslo__v1__examples__alert_policies.yaml": (0, ()),
    "pkg__openslo__v1__examples__data_sources.yaml": (0, ()),
    "pkg__openslo__v1__examples__services.yaml": (0, ()),
    "pkg__openslo__v1__examples__slis.yaml": (0, ()),
    # One-minute slices hold one sample each at the default 60 s scrape interval.
    "pkg__openslo__v1__examples__slos.yaml": (1, ("spec.timeslice.length",)),
    "pkg__openslo__v1alpha__examples__services.yaml": (0, ()),
    # A threshold metric, and a Datadog ratio without a slice window.
    "pkg__openslo__v1alpha__examples__slos.yaml": (
        0,
        (
            "spec.indicator.thresholdMetric",
            "spec.objectives[0].timeSliceWindow",
            "spec.objectives[0].ratioMetrics.good.source",
            "spec.objectives[0].ratioMetrics.total.source",
        ),
    ),
    "pkg__openslo__v2alpha__examples__alert_conditions.yaml": (0, ()),
    "pkg__openslo__v2alpha__examples__alert_notification_targets.yaml": (0, ()),
    "pkg__openslo__v2alpha__examples__alert_policies.yaml": (0, ()),
    "pkg__openslo__v2alpha__examples__data_sources.yaml": (0, ()),
    "pkg__openslo__v2alpha__examples__services.yaml": (0, ()),
    "pkg__openslo__v2alpha__examples__slis.yaml": (0, ()),
    "pkg__openslo__v2alpha__examples__slos.yaml": (1, ("spec.timeslice.length",)),
    "examples__openslo-getting-started.yml": (1, ()),
    "examples__openslo-kubernetes-apiserver.yml": (3, ()),
    # Sloth
    "examples__contrib-denominator-corrected.yaml": (1, ()),
    "examples__contrib-slo-plugins.yml": (2, ()),
    "examples__getting-started.yml": (1, ()),
    "examples__home-wifi.yml": (2, ()),
    "examples__k8s-getting-started.yml": (1, ()),
    "examples__k8s-home-wifi.yml": (2, ()),
    "examples__k8s-multifile.yml": (2, ()),
    "examples__kubernetes-apiserver.yml": (2, ()),
    "examples__multifile.yml": (2, ()),
    "examples__no-alerts.yml": (1, ()),
    # SLI plugins are Go code run by Sloth: no query to carry over.
    "examples__plugin-getting-started.yml": (0, ("slos[0].sli.plugin",)),
    "examples__plugin-k8s-getting-started.yml": (0, ("spec.slos[0].sli.plugin",)),
    "examples__raw-home-wifi.yml": (1, ()),
    "examples__slo-plugin-getting-started.yml": (1, ()),
    "examples__slo-plugin-k8s-getting-started.yml": (1, ()),
    "examples__victoria-metrics.yml": (2, ()),
    "examples__windows__7d.yaml": (0, ()),
    "examples__windows__custom-30d.yaml": (0, ()),
    "internal__alert__windows__google-28d.yaml": (0, ()),
    "internal__alert__windows__google-30d.yaml": (0, ()),
    # Pyrra
    "examples__caddy-response-latency.yaml": (1, ()),
    "examples__docker-compose__pyrra__prometheus-http.yaml": (1, ()),
    "examples__mimir__example-slo.yaml": (1, ()),
    "examples__nginx.yaml": (2, ()),
    "examples__parca-grpc-queryrange-errors.yaml": (1, ()),
    "examples__prometheus-http.yaml": (1, ()),
    "examples__prometheus-operator.yaml": (1, ()),
    "examples__prometheus-probe-success.yaml": (1, ()),
    "examples__pyrra-connect-errors.yaml": (1, ()),
    "examples__pyrra-connect-latency.yaml": (1, ()),
    "examples__pyrra-filesystem-errors.yaml": (1, ()),
    "examples__pyrra-kubernetes-errors.yaml": (1, ()),
    "examples__thanos-grpc.yaml": (1, ()),
    "examples__thanos-http.yaml": (1, ()),
    **{
        f"examples__kubernetes__manifests__slos__slo-{name}.yaml": (1, ())
        for name in (
            "apiserver-read-cluster-latency",
            "apiserver-read-namespace-latency",
            "apiserver-read-resource-latency",
            "apiserver-read-response-errors",
            "apiserver-write-response-errors",
            "coredns-response-errors",
            "kubelet-request-errors",
            "kubelet-runtime-errors",
            "prometheus-notification-errors",
            "prometheus-operator-http-errors",
            "prometheus-operator-reconcile-errors",
            "prometheus-query-errors",
            "prometheus-rule-evaluation-failures",
            "prometheus-sd-kubernetes-errors",
        )
    },
    # slo-generator
    "samples__config.yaml": (0, ()),
    "samples__prometheus__slo_prom_metrics_availability_query_sli.yaml": (1, ()),
    "samples__prometheus__slo_prom_metrics_availability_ratio.yaml": (1, ()),
    "samples__prometheus__slo_prom_metrics_latency_distribution_cut.yaml": (1, ()),
    "samples__prometheus__slo_prom_metrics_latency_query_sli.yaml": (1, ()),
}


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        path
        for folder in FORMAT_FOLDERS
        for path in (CORPUS / folder).rglob("*")
        if path.suffix in (".yaml", ".yml")
    )


def test_corpus_is_present() -> None:
    """The corpus must be there: a missing folder fails instead of skipping."""
    assert CORPUS.is_dir(), f"SLO corpus not found at {CORPUS}"
    for folder in FORMAT_FOLDERS:
        assert (CORPUS / folder).is_dir(), f"corpus folder {folder}/ is missing"


def test_every_corpus_file_has_an_expectation() -> None:
    names = {path.name for path in _corpus_files()}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda path: path.name)
def test_corpus_file_converts_as_expected(path: Path) -> None:
    slo_count, error_fields = EXPECTED[path.name]

    result = load_paths([path])

    assert len(result.objects) == slo_count
    assert [error.field for error in result.errors] == list(error_fields)


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda path: path.name)
def test_corpus_file_round_trips_through_native_yaml(path: Path) -> None:
    converted = load_paths([path])
    text = to_yaml(converted.objects)
    if not converted.objects:
        assert text == ""
        return

    reloaded = load_text(text, name="converted.yaml")

    # What was wrong with the converted objects is wrong with them reloaded, and
    # nothing else.
    assert {e.message for e in reloaded.errors} <= {e.message for e in converted.errors}
    assert reloaded.objects == converted.objects


def test_sloth_examples_together_define_one_slo_twice() -> None:
    """Sloth's examples repeat one SLO in several files: a run flags each copy."""
    result = load_paths([CORPUS / "sloth"])

    duplicates = [e for e in result.errors if "is also defined" in e.message]

    assert len(duplicates) == 4
