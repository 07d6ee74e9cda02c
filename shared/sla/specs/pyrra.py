"""Pyrra ``pyrra.dev/v1alpha1`` ServiceLevelObjective.

The target is a percent written as a string, the window a Prometheus duration.
Ratio and bool-gauge indicators map one to one; a latency indicator whose
success selector is the total's histogram with an ``le`` bound becomes a native
latency indicator, and native-histogram latency becomes ratio expressions.
Pyrra alerts with its own burn-rate table: the ``pyrra`` preset.
"""

from __future__ import annotations

import re
from typing import Any

from sla.model.slo import WINDOW_PLACEHOLDER, SLODefinition
from sla.specs import promql
from sla.specs.document import (
    Conversion,
    RunContext,
    SourceDocument,
    join_path,
    unknown_kind,
)
from sla.specs.draft import DraftReader, build
from sla.specs.fields import (
    decimal_of,
    mapping_at,
    not_carried,
    put_object_metadata,
    text_at,
    unknown_fields,
)

API_VERSION = "pyrra.dev/v1alpha1"

_INDICATORS = ("ratio", "latency", "latencyNative", "bool_gauge")
_GO_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_GO_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def recognises(document: SourceDocument) -> bool:
    return document.api_version == API_VERSION


def convert(document: SourceDocument, context: RunContext) -> Conversion:
    if document.kind != "ServiceLevelObjective":
        return unknown_kind(document, API_VERSION, "ServiceLevelObjective")
    return _Reader(document).convert()


class _Reader(DraftReader):
    def convert(self) -> Conversion:
        document, body = self.document, self.document.body
        unknown_fields(
            document,
            body,
            "",
            ("apiVersion", "kind", "metadata", "spec", "status"),
            self.findings,
        )
        self._metadata(
            mapping_at(document, body.get("metadata"), "metadata", self.findings)
        )
        spec = mapping_at(document, body.get("spec"), "spec", self.findings)
        known = (
            "target",
            "window",
            "description",
            "indicator",
            "alerting",
            "partial_response_strategy",
            "performanceOverAccuracy",
            "ruleOutput",
        )
        unknown_fields(document, spec, "spec", known, self.findings)
        self._objective(spec)
        if isinstance(spec.get("description"), str) and spec["description"]:
            self.draft.put(
                "spec.description", spec["description"], source="spec.description"
            )
        not_carried(
            document,
            spec,
            "spec",
            ("partial_response_strategy", "performanceOverAccuracy", "ruleOutput"),
            "these shape the rules Pyrra writes; the native engine writes its own",
            self.findings,
        )
        self._indicator(spec.get("indicator"), "spec.indicator")
        self._alerting(spec.get("alerting"), "spec.alerting")
        if any(f.severity == "error" for f in self.findings):
            return Conversion(findings=self.findings)
        built = build(SLODefinition, self.draft, document, fallback="spec")
        if isinstance(built, Conversion):
            built.findings[:0] = self.findings
            return built
        return Conversion(objects=[built], findings=self.findings)

    def _metadata(self, metadata: dict[str, Any]) -> None:
        name, native, _ = put_object_metadata(
            self.document, metadata, self.draft, self.findings
        )
        if name is None:
            return
        if isinstance(metadata.get("annotations"), dict):
            self.draft.put(
                "metadata.annotations",
                metadata["annotations"],
                source="metadata.annotations",
            )
        # Pyrra has no service; the SLO's own name is the nearest thing to one.
        self.draft.put(
            "spec.service", native, source="metadata.name", source_value=name
        )
        self.note(
            "metadata.name",
            f"spec.service {native!r}: Pyrra names no service, so the SLO's name is "
            "used",
        )

    def _objective(self, spec: dict[str, Any]) -> None:
        target = spec.get("target")
        if target is None:
            self.error("spec.target", "required field is missing")
        else:
            number = decimal_of(target)
            if number is None:
                self.error("spec.target", "must be a percent such as '99.9'", target)
            else:
                self.draft.put(
                    "spec.objective", number, source="spec.target", source_value=target
                )
        if spec.get("window") is None:
            self.error("spec.window", "required field is missing")
        else:
            self.draft.put("spec.window", spec["window"], source="spec.window")

    def _indicator(self, indicator: Any, path: str) -> None:
        indicator = mapping_at(self.document, indicator, path, self.findings)
        unknown_fields(self.document, indicator, path, _INDICATORS, self.findings)
        given = [kind for kind in _INDICATORS if indicator.get(kind) is not None]
        if len(given) != 1:
            found = ", ".join(given) or "none"
            self.error(
                path, f"give exactly one of {', '.join(_INDICATORS)} (found {found})"
            )
            return
        kind = given[0]
        kind_path = join_path(path, kind)
        body = mapping_at(self.document, indicator[kind], kind_path, self.findings)
        if body.get("grouping"):
            self.note(
                join_path(kind_path, "grouping"),
                "not carried over: Pyrra keeps a budget per group; the native SLO "
                "counts all groups together",
                body["grouping"],
            )
        {
            "ratio": self._ratio,
            "latency": self._latency,
            "latencyNative": self._native_latency,
            "bool_gauge": self._bool_gauge,
        }[kind](body, kind_path)

    def _selector(self, body: dict[str, Any], path: str, key: str) -> str | None:
        part_path = join_path(path, key)
        part = mapping_at(self.document, body.get(key), part_path, self.findings)
        if body.get(key) is None:
            self.error(part_path, "required field is missing")
            return None
        unknown_fields(self.document, part, part_path, ("metric",), self.findings)
        return text_at(
            self.document, part, part_path, "metric", self.findings, required=True
        )

    def _ratio(self, body: dict[str, Any], path: str) -> None:
        unknown_fields(
            self.document, body, path, ("errors", "total", "grouping"), self.findings
        )
        for key, role in (("errors", "bad"), ("total", "total")):
            metric = self._selector(body, path, key)
            if metric is not None:
                field = join_path(path, key, "metric")
                self.draft.put(
                    f"spec.indicator.ratio.{role}",
                    {"metric": metric},
                    source=field,
                    source_value=metric,
                )

    def _bool_gauge(self, body: dict[str, Any], path: str) -> None:
        unknown_fields(self.document, body, path, ("metric", "grouping"), self.findings)
        metric = text_at(
            self.document, body, path, "metric", self.findings, required=True
        )
        if metric is not None:
            self.draft.put(
                "spec.indicator.boolGauge.metric",
                metric,
                source=join_path(path, "metric"),
            )

    def _latency(self, body: dict[str, Any], path: str) -> None:
        unknown_fields(
            self.document, body, path, ("success", "total", "grouping"), self.findings
        )
        success = self._selector(body, path, "success")
        total = self._selector(body, path, "total")
        if success is None or total is None:
            return
        success_path = join_path(path, "success", "metric")
        histogram = _histogram_of(success, total)
        if histogram is not None:
            base, threshold = histogram
            self.draft.put(
                "spec.indicator.latency.histogram",
                base,
                source=success_path,
                source_value=success,
            )
            self.draft.put(
                "spec.indicator.latency.threshold",
                threshold,
                source=success_path,
                source_value=success,
            )
            return
        # The buckets and the count select different series (extra matchers on
        # one side): only the two selectors as written say exactly what counts.
        self.note(
            path,
            "written as a ratio of the two selectors: success is not the total's "
            "histogram with an le bound added, so no latency indicator matches it",
        )
        self.draft.put(
            "spec.indicator.ratio.good", {"metric": success}, source=success_path
        )
        self.draft.put(
            "spec.indicator.ratio.total",
            {"metric": total},
            source=join_path(path, "total", "metric"),
        )

    def _native_latency(self, body: dict[str, Any], path: str) -> None:
        unknown_fields(
            self.document, body, path, ("latency", "total", "grouping"), self.findings
        )
        total = self._selector(body, path, "total")
        latency_path = join_path(path, "latency")
        latency = body.get("latency")
        seconds = _go_duration_seconds(latency)
        if seconds is None:
            self.error(latency_path, "must be a duration like 200ms or 1s", latency)
        if total is None or seconds is None:
            return
        events = f"sum(increase({total}[{WINDOW_PLACEHOLDER}]))"
        good = (
            f"histogram_fraction(0, {seconds:g}, {events}) * histogram_count({events})"
        )
        total_path = join_path(path, "total", "metric")
        self.draft.put(
            "spec.indicator.ratio.good",
            {"expr": good},
            source=latency_path,
            source_value=latency,
        )
        self.draft.put(
            "spec.indicator.ratio.total",
            {"expr": f"histogram_count({events})"},
            source=total_path,
            source_value=total,
        )
        self.note(
            path,
            "native histogram: written as a ratio with histogram_fraction and "
            "histogram_count",
        )

    def _alerting(self, alerting: Any, path: str) -> None:
        alerting = mapping_at(self.document, alerting, path, self.findings)
        known = ("disabled", "burnrates", "absent", "name", "absentName", "severities")
        unknown_fields(self.document, alerting, path, known, self.findings)
        not_carried(
            self.document,
            alerting,
            path,
            ("name", "absentName", "severities"),
            "native burn-rate alerts carry their own name and severity",
            self.findings,
        )
        if alerting.get("absent") is not False:
            self.note(
                path,
                "absent alerts (no data at all) are not carried over: the native "
                "status for that is no_data",
            )
        if alerting.get("disabled") is True or alerting.get("burnrates") is False:
            self.draft.put("spec.alerting.rows", [], source=path)
            return
        self.draft.put("spec.alerting.preset", "pyrra", source=path)
        self.note(path, "alerting: pyrra preset, Pyrra's burn-rate table")


def _histogram_of(success: str, total: str) -> tuple[str, float] | None:
    """``x_bucket{a,le="0.5"}`` and ``x_count{a}`` → (``x{a}``, 0.5); else None."""
    bucket, count = promql.parse_selector(success), promql.parse_selector(total)
    if bucket is None or count is None:
        return None
    if not bucket.name.endswith("_bucket") or not count.name.endswith("_count"):
        return None
    base = bucket.name.removesuffix("_bucket")
    bound = bucket.value_of("le")
    if base != count.name.removesuffix("_count") or bound is None:
        return None
    try:
        threshold = float(bound)
    except ValueError:
        return None
    histogram = bucket.without("le").renamed(base)
    if not histogram.same_matchers(count):
        return None
    return str(histogram), threshold


def _go_duration_seconds(text: Any) -> float | None:
    if not isinstance(text, str) or not _GO_DURATION.match(text):
        return None
    seconds = sum(
        float(amount) * _GO_UNIT_SECONDS[unit]
        for amount, unit in _GO_DURATION_PART.findall(text)
    )
    return seconds if seconds > 0 else None
