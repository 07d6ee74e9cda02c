"""OpenSLO: ``openslo/v1`` in full, ``openslo/v1alpha`` and ``openslo.com/v2alpha``.

An SLO with several objectives becomes one SLODefinition per objective, named
after the objective. Indicators may be inline or named SLI documents of the
same run; alert policies may be inline or named, and their burn-rate
conditions become explicit burn-rate rows. SLI, Service, DataSource,
AlertPolicy, AlertCondition and AlertNotificationTarget documents have no
native object of their own.

Only Prometheus metric sources can be measured; ``thresholdMetric`` indicators
(a value compared with ``op``/``value``) and composite objectives have no
native form and are errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sla.model.durations import format_duration
from sla.model.slo import SLODefinition
from sla.specs import promql
from sla.specs.document import (
    Conversion,
    Finding,
    RunContext,
    SourceDocument,
    join_path,
)
from sla.specs.draft import Draft, build
from sla.specs.fields import (
    fraction_to_percent,
    label_map,
    list_at,
    mapping_at,
    not_carried,
    object_name,
    slug,
    text_at,
    unknown_fields,
)

V1 = "openslo/v1"
V1ALPHA = "openslo/v1alpha"
V2ALPHA = "openslo.com/v2alpha"
SUPPORTED = (V1, V1ALPHA, V2ALPHA)

SIDE_KINDS = {
    "SLI": "an SLI is converted as part of the SLOs that name it",
    "Service": "a service is the spec.service of its SLOs",
    "DataSource": "a data source is read by the SLOs whose metrics name it",
    "AlertPolicy": "an alert policy is converted as part of the SLOs that name it",
    "AlertCondition": "an alert condition is converted as part of its alert policies",
    "AlertNotificationTarget": "notification targets are not carried over; "
    "alerts are routed by Alertmanager",
}

_SHORTHAND = re.compile(r"^(\d+)([mhdwMQY])$")
# OpenSLO's own day counts for the long units (the OpenSLO Go SDK's Duration()).
_LONG_UNIT_DAYS = {"M": 30, "Q": 90, "Y": 365}
_V1ALPHA_UNITS = {
    "Second": "s",
    "Minute": "m",
    "Hour": "h",
    "Day": "d",
    "Week": "w",
    "Month": "M",
    "Quarter": "Q",
    "Year": "Y",
}
# The SRE workbook pairs each long window with a short one a twelfth as long.
_SHORT_WINDOW_DIVISOR = 12
_PAGE_SEVERITIES = ("page", "critical", "high")


def recognises(document: SourceDocument) -> bool:
    return document.api_version.startswith(("openslo/", "openslo.com/"))


def convert(document: SourceDocument, context: RunContext) -> Conversion:
    if document.api_version not in SUPPORTED:
        return Conversion(
            findings=[
                document.error(
                    "apiVersion",
                    "unsupported OpenSLO version: this tool reads "
                    + ", ".join(SUPPORTED),
                    document.api_version,
                )
            ]
        )
    if document.kind == "SLO":
        return _SLOReader(document, context).convert()
    if document.kind in SIDE_KINDS:
        findings = []
        if not document.name:
            findings.append(
                document.error("metadata.name", "required field is missing")
            )
        findings.append(
            document.note("", f"no native object: {SIDE_KINDS[document.kind]}")
        )
        return Conversion(findings=findings)
    expected = ", ".join(["SLO", *SIDE_KINDS])
    return Conversion(
        findings=[
            document.error(
                "kind", f"unknown OpenSLO kind: expected {expected}", document.kind
            )
        ]
    )


def _family(api_version: str) -> tuple[str, ...]:
    """Versions whose documents may refer to each other."""
    return (api_version,)


@dataclass
class _Indicator:
    """A converted SLI: native indicator fields and the source field behind them."""

    fields: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, tuple[str, Any]] = field(default_factory=dict)
    datasource_urls: set[str] = field(default_factory=set)
    ok: bool = True


class _SLOReader:
    def __init__(self, document: SourceDocument, context: RunContext) -> None:
        self.document = document
        self.context = context
        self.version = document.api_version
        self.findings: list[Finding] = []

    def error(self, path: str, message: str, *value: Any) -> None:
        self.findings.append(self.document.error(path, message, *value))

    def note(self, path: str, message: str, *value: Any) -> None:
        self.findings.append(self.document.note(path, message, *value))

    # The SLO as a whole ---------------------------------------------------------

    def convert(self) -> Conversion:
        body = self.document.body
        unknown_fields(
            self.document,
            body,
            "",
            ("apiVersion", "kind", "metadata", "spec"),
            self.findings,
        )
        spec = mapping_at(self.document, body.get("spec"), "spec", self.findings)
        base = Draft({"apiVersion": "sla.dev/v1alpha1", "kind": "SLODefinition"})
        name = self._metadata(body.get("metadata"), base)
        self._spec_fields(spec, base)
        self._window(spec, base)
        indicator = None if self.version == V1ALPHA else self._spec_indicator(spec)
        alerting = None if self.version == V1ALPHA else self._alerting(spec)

        objectives = list_at(
            self.document, spec.get("objectives"), "spec.objectives", self.findings
        )
        if not objectives:
            self.error("spec.objectives", "at least one objective is needed")
        names = self._objective_names(name, objectives)
        result = Conversion()
        for index, objective in enumerate(objectives):
            draft = base.copy()
            path = join_path("spec.objectives", index)
            if not isinstance(objective, dict):
                self.error(path, "must be a mapping", objective)
                continue
            if names[index] is not None:
                draft.put("metadata.name", names[index], source=path)
            own = self._objective(objective, path, draft, spec)
            chosen = own if self.version == V1ALPHA else indicator
            if chosen is None or not chosen.ok:
                continue
            _apply_indicator(draft, chosen)
            if alerting is not None:
                _apply_alerting(draft, alerting)
            if any(f.severity == "error" for f in self.findings):
                continue
            built = build(SLODefinition, draft, self.document, fallback=path)
            if isinstance(built, Conversion):
                result.findings.extend(built.findings)
            else:
                result.objects.append(built)
        result.findings[:0] = self.findings
        if result.failed:
            result.objects.clear()
        return result

    def _metadata(self, metadata: Any, draft: Draft) -> str:
        metadata = mapping_at(self.document, metadata, "metadata", self.findings)
        unknown_fields(
            self.document,
            metadata,
            "metadata",
            ("name", "namespace", "displayName", "labels", "annotations"),
            self.findings,
        )
        name = text_at(
            self.document, metadata, "metadata", "name", self.findings, required=True
        )
        if name:
            native = object_name(self.document, name, "metadata.name", self.findings)
            draft.put(
                "metadata.name", native, source="metadata.name", source_value=name
            )
        if isinstance(metadata.get("namespace"), str):
            draft.put(
                "metadata.namespace", metadata["namespace"], source="metadata.namespace"
            )
        labels = label_map(
            self.document, metadata.get("labels"), "metadata.labels", self.findings
        )
        if labels:
            draft.put("metadata.labels", labels, source="metadata.labels")
        if isinstance(metadata.get("annotations"), dict):
            draft.put(
                "metadata.annotations",
                metadata["annotations"],
                source="metadata.annotations",
            )
        not_carried(
            self.document,
            metadata,
            "metadata",
            ["displayName"],
            "native objects have no display name",
            self.findings,
        )
        return name or ""

    def _spec_fields(self, spec: dict[str, Any], draft: Draft) -> None:
        known = {
            V1: (
                "description",
                "service",
                "indicator",
                "indicatorRef",
                "budgetingMethod",
                "timeWindow",
                "objectives",
                "alertPolicies",
            ),
            V2ALPHA: (
                "description",
                "service",
                "serviceRef",
                "sli",
                "sliRef",
                "budgetingMethod",
                "timeWindow",
                "objectives",
                "alertPolicies",
            ),
            V1ALPHA: (
                "description",
                "service",
                "indicator",
                "budgetingMethod",
                "timeWindows",
                "objectives",
            ),
        }[self.version]
        unknown_fields(self.document, spec, "spec", known, self.findings)
        service_key = "serviceRef" if "serviceRef" in spec else "service"
        service = text_at(
            self.document, spec, "spec", service_key, self.findings, required=True
        )
        if service:
            draft.put("spec.service", service, source=join_path("spec", service_key))
        if isinstance(spec.get("description"), str) and spec["description"]:
            draft.put(
                "spec.description", spec["description"], source="spec.description"
            )
        method = spec.get("budgetingMethod")
        if method is None:
            self.note(
                "spec.budgetingMethod", "not given: Occurrences, the native default"
            )
        else:
            draft.put("spec.budgetingMethod", method, source="spec.budgetingMethod")

    # Time window ----------------------------------------------------------------

    def _window(self, spec: dict[str, Any], draft: Draft) -> None:
        key = "timeWindows" if self.version == V1ALPHA else "timeWindow"
        path = join_path("spec", key)
        windows = list_at(self.document, spec.get(key), path, self.findings)
        if len(windows) != 1:
            self.error(path, f"exactly one time window is needed, found {len(windows)}")
            return
        window_path = join_path(path, 0)
        window = mapping_at(self.document, windows[0], window_path, self.findings)
        if self.version == V1ALPHA:
            unknown_fields(
                self.document,
                window,
                window_path,
                ("unit", "count", "isRolling", "calendar"),
                self.findings,
            )
            shorthand = self._v1alpha_shorthand(window, window_path)
            duration_path = window_path
        else:
            unknown_fields(
                self.document,
                window,
                window_path,
                ("duration", "isRolling", "calendar"),
                self.findings,
            )
            duration_path = join_path(window_path, "duration")
            shorthand = window.get("duration")
        if shorthand is None:
            return

        calendar = window.get("calendar")
        rolling = window.get("isRolling", calendar is None)
        if rolling and calendar is not None:
            self.error(
                join_path(window_path, "calendar"),
                "cannot be set when isRolling is true",
            )
        elif not rolling and calendar is None:
            self.error(
                join_path(window_path, "calendar"),
                "must be set when isRolling is false",
            )
        elif rolling:
            text = self._rolling(shorthand, duration_path)
            if text:
                draft.put(
                    "spec.window", text, source=duration_path, source_value=shorthand
                )
        else:
            self._calendar(
                shorthand,
                duration_path,
                calendar,
                join_path(window_path, "calendar"),
                draft,
            )

    def _v1alpha_shorthand(self, window: dict[str, Any], path: str) -> str | None:
        unit, count = window.get("unit"), window.get("count")
        letter = _V1ALPHA_UNITS.get(unit) if isinstance(unit, str) else None
        if letter is None:
            units = ", ".join(_V1ALPHA_UNITS)
            self.error(join_path(path, "unit"), f"must be one of {units}", unit)
            return None
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            self.error(
                join_path(path, "count"), "must be a positive whole number", count
            )
            return None
        return f"{count}{letter}"

    def _rolling(self, shorthand: Any, path: str) -> str | None:
        """A rolling OpenSLO duration as a Prometheus duration."""
        parsed = _parse_shorthand(shorthand)
        if parsed is None:
            if (
                isinstance(shorthand, str)
                and shorthand.endswith("s")
                and self.version == V1ALPHA
            ):
                return shorthand
            self.error(
                path,
                "is not a duration like 28d, 4w or 1M (units m h d w M Q Y)",
                shorthand,
            )
            return None
        amount, unit = parsed
        if unit in _LONG_UNIT_DAYS:
            days = amount * _LONG_UNIT_DAYS[unit]
            self.note(
                path,
                f"written as {days}d: OpenSLO counts {unit} as "
                f"{_LONG_UNIT_DAYS[unit]} days",
                shorthand,
            )
            return f"{days}d"
        return f"{amount}{unit}"

    def _calendar(
        self, shorthand: Any, path: str, calendar: Any, calendar_path: str, draft: Draft
    ) -> None:
        native = {"1w": "week", "1M": "month"}.get(str(shorthand))
        if native is None:
            self.error(
                path,
                "a calendar window of this length cannot be held: native calendar "
                "windows are one week (1w) or one month (1M)",
                shorthand,
            )
            return
        draft.put("spec.window", native, source=path, source_value=shorthand)
        calendar = mapping_at(self.document, calendar, calendar_path, self.findings)
        unknown_fields(
            self.document,
            calendar,
            calendar_path,
            ("startTime", "timeZone"),
            self.findings,
        )
        zone_path = join_path(calendar_path, "timeZone")
        if calendar.get("timeZone") is not None:
            draft.put("spec.timeZone", calendar["timeZone"], source=zone_path)
        if calendar.get("startTime") is not None:
            self.note(
                join_path(calendar_path, "startTime"),
                f"not carried over: native calendar windows start at each {native}'s "
                "first day in the time zone",
                str(calendar["startTime"]),
            )

    # Objectives -----------------------------------------------------------------

    def _objective_names(self, name: str, objectives: list[Any]) -> list[str | None]:
        """One name per objective; the SLO's own name when it has one objective."""
        if len(objectives) <= 1 or not name:
            return [None] * len(objectives)
        base = object_name(self.document, name, "metadata.name", [])
        titles = [
            slug(o.get("displayName", ""))
            if isinstance(o, dict) and isinstance(o.get("displayName"), str)
            else ""
            for o in objectives
        ]
        if all(titles) and len(set(titles)) == len(titles):
            names = [f"{base}-{title}" for title in titles]
        else:
            names = [f"{base}-{index}" for index in range(len(objectives))]
        for index, native in enumerate(names):
            self.note(
                join_path("spec.objectives", index), f"becomes SLODefinition {native}"
            )
        return list(names)

    def _objective(
        self, objective: dict[str, Any], path: str, draft: Draft, spec: dict[str, Any]
    ) -> _Indicator | None:
        known = {
            V1: (
                "displayName",
                "op",
                "value",
                "target",
                "targetPercent",
                "timeSliceTarget",
                "timeSliceWindow",
                "indicator",
                "indicatorRef",
                "compositeWeight",
            ),
            V2ALPHA: (
                "displayName",
                "op",
                "value",
                "target",
                "targetPercent",
                "timeSliceTarget",
                "timeSliceWindow",
                "sli",
                "sliRef",
                "compositeWeight",
            ),
            V1ALPHA: (
                "displayName",
                "op",
                "value",
                "target",
                "timeSliceTarget",
                "timeSliceWindow",
                "ratioMetrics",
            ),
        }[self.version]
        unknown_fields(self.document, objective, path, known, self.findings)
        self._target(objective, path, draft)
        self._timeslice(objective, path, draft, spec.get("budgetingMethod"))
        for key in ("indicator", "indicatorRef", "sli", "sliRef", "compositeWeight"):
            if objective.get(key) is not None:
                self.error(
                    join_path(path, key),
                    "composite objectives cannot be carried over: write each part as "
                    "its own SLO and combine them with a composite indicator",
                )
        not_carried(
            self.document,
            objective,
            path,
            ["displayName"],
            "native objects have no display name",
            self.findings,
        )
        if self.version == V1ALPHA:
            return self._v1alpha_indicator(objective, path, spec)
        if objective.get("op") is not None or objective.get("value") is not None:
            self.note(
                path,
                "op and value are not carried over: they compare threshold metrics, "
                "and ratio indicators have none",
            )
        return None

    def _target(self, objective: dict[str, Any], path: str, draft: Draft) -> None:
        target, percent = objective.get("target"), objective.get("targetPercent")
        if target is not None and percent is not None:
            self.error(path, "give target or targetPercent, not both")
        elif target is not None:
            value = fraction_to_percent(target)
            if value is None:
                self.error(
                    join_path(path, "target"),
                    "must be a number between 0 and 1",
                    target,
                )
            else:
                draft.put(
                    "spec.objective",
                    value,
                    source=join_path(path, "target"),
                    source_value=target,
                )
        elif percent is not None:
            draft.put(
                "spec.objective", percent, source=join_path(path, "targetPercent")
            )
        else:
            self.error(path, "give target (a fraction) or targetPercent")

    def _timeslice(
        self, objective: dict[str, Any], path: str, draft: Draft, method: Any
    ) -> None:
        slice_target, slice_window = (
            objective.get("timeSliceTarget"),
            objective.get("timeSliceWindow"),
        )
        if method not in ("Timeslices", "RatioTimeslices"):
            for key in ("timeSliceTarget", "timeSliceWindow"):
                if objective.get(key) is not None:
                    self.note(
                        join_path(path, key),
                        "not carried over: not used by budgetingMethod "
                        f"{method or 'Occurrences'}",
                        objective[key],
                    )
            return
        window_path = join_path(path, "timeSliceWindow")
        if slice_window is None:
            self.error(window_path, f"required by budgetingMethod {method}")
        else:
            length = self._rolling(slice_window, window_path)
            if length:
                draft.put(
                    "spec.timeslice.length",
                    length,
                    source=window_path,
                    source_value=slice_window,
                )
        if method == "RatioTimeslices":
            self._ratio_timeslice_target(objective, path, draft)
            return
        target_path = join_path(path, "timeSliceTarget")
        if slice_target is None:
            self.error(target_path, "required by budgetingMethod Timeslices")
            return
        value = fraction_to_percent(slice_target)
        if value is None:
            self.error(target_path, "must be a number between 0 and 1", slice_target)
        else:
            draft.put(
                "spec.timeslice.target",
                value,
                source=target_path,
                source_value=slice_target,
            )

    def _ratio_timeslice_target(
        self, objective: dict[str, Any], path: str, draft: Draft
    ) -> None:
        if "timeSliceTarget" in objective:
            self.note(
                join_path(path, "timeSliceTarget"),
                "RatioTimeslices averages the slices' ratios and uses no slice "
                "target; it is not carried over",
                objective["timeSliceTarget"],
            )

    # Indicators -----------------------------------------------------------------

    def _spec_indicator(self, spec: dict[str, Any]) -> _Indicator | None:
        inline_key, ref_key = (
            ("sli", "sliRef")
            if self.version == V2ALPHA
            else ("indicator", "indicatorRef")
        )
        inline, ref = spec.get(inline_key), spec.get(ref_key)
        if inline is not None and ref is not None:
            self.error("spec", f"give {inline_key} or {ref_key}, not both")
            return None
        if inline is not None:
            path = join_path("spec", inline_key)
            inline = mapping_at(self.document, inline, path, self.findings)
            unknown_fields(
                self.document, inline, path, ("metadata", "spec"), self.findings
            )
            return self._sli_spec(
                self.document, inline.get("spec"), join_path(path, "spec"), path
            )
        if ref is not None:
            return self._referenced_sli(ref, join_path("spec", ref_key))
        self.error("spec", f"no indicator: give {inline_key} or {ref_key}")
        return None

    def _referenced_sli(self, ref: Any, path: str) -> _Indicator | None:
        sli = (
            self.context.find(_family(self.version), "SLI", ref)
            if isinstance(ref, str)
            else None
        )
        if sli is None:
            self.error(path, "names no SLI document among the inputs", ref)
            return None
        reader = _SLOReader(sli, self.context)
        indicator = reader._sli_spec(sli, sli.body.get("spec"), "spec", path)
        self.findings.extend(reader.findings)
        if not indicator.ok:
            self.error(
                path,
                f"the SLI it names cannot be converted ({sli.file}, {sli.label})",
                ref,
            )
        return indicator

    def _sli_spec(
        self, document: SourceDocument, spec: Any, path: str, origin: str
    ) -> _Indicator:
        indicator = _Indicator()
        spec = mapping_at(document, spec, path, self.findings)
        unknown_fields(
            document,
            spec,
            path,
            ("description", "thresholdMetric", "ratioMetric"),
            self.findings,
        )
        if spec.get("thresholdMetric") is not None:
            self.findings.append(
                document.error(
                    join_path(path, "thresholdMetric"),
                    "cannot be carried over: native indicators count good and total "
                    "events (ratio, latency, boolGauge, raw); a metric compared with a "
                    "threshold has no native form",
                )
            )
            indicator.ok = False
            return indicator
        ratio_path = join_path(path, "ratioMetric")
        ratio = spec.get("ratioMetric")
        if ratio is None:
            self.findings.append(document.error(path, "no indicator: give ratioMetric"))
            indicator.ok = False
            return indicator
        ratio = mapping_at(document, ratio, ratio_path, self.findings)
        unknown_fields(
            document,
            ratio,
            ratio_path,
            ("counter", "good", "bad", "total", "rawType", "raw"),
            self.findings,
        )
        self._ratio(
            document, ratio, ratio_path, origin, indicator, counter=ratio.get("counter")
        )
        return indicator

    def _v1alpha_indicator(
        self, objective: dict[str, Any], path: str, spec: dict[str, Any]
    ) -> _Indicator | None:
        if (
            isinstance(spec.get("indicator"), dict)
            and spec["indicator"].get("thresholdMetric") is not None
        ):
            self.error(
                "spec.indicator.thresholdMetric",
                "cannot be carried over: native indicators count good and total "
                "events; a metric compared with a threshold has no native form",
            )
            return None
        ratio_path = join_path(path, "ratioMetrics")
        ratio = objective.get("ratioMetrics")
        if ratio is None:
            self.error(path, "no indicator: give ratioMetrics")
            return None
        ratio = mapping_at(self.document, ratio, ratio_path, self.findings)
        unknown_fields(
            self.document,
            ratio,
            ratio_path,
            ("incremental", "good", "bad", "total"),
            self.findings,
        )
        indicator = _Indicator()
        self._ratio(
            self.document,
            ratio,
            ratio_path,
            ratio_path,
            indicator,
            counter=ratio.get("incremental"),
        )
        return indicator

    def _ratio(
        self,
        document: SourceDocument,
        ratio: dict[str, Any],
        path: str,
        origin: str,
        indicator: _Indicator,
        *,
        counter: Any,
    ) -> None:
        own = document is self.document
        if ratio.get("raw") is not None:
            self._raw(
                document,
                ratio,
                path,
                origin if not own else join_path(path, "raw"),
                indicator,
            )
            return
        roles = [role for role in ("good", "bad") if ratio.get(role) is not None]
        if len(roles) != 1 or ratio.get("total") is None:
            self.findings.append(
                document.error(path, "give total and exactly one of good or bad")
            )
            indicator.ok = False
            return
        for role in (roles[0], "total"):
            role_path = join_path(path, role)
            query = self._metric_query(document, ratio[role], role_path, indicator)
            if query is None:
                indicator.ok = False
                continue
            native = self._events_query(document, query, role_path, counter)
            if native is None:
                indicator.ok = False
                continue
            key = f"spec.indicator.ratio.{role}"
            indicator.fields[key] = native
            indicator.origins[key] = (role_path if own else origin, query)

    def _raw(
        self,
        document: SourceDocument,
        ratio: dict[str, Any],
        path: str,
        origin: str,
        indicator: _Indicator,
    ) -> None:
        raw_type = ratio.get("rawType")
        if raw_type not in ("success", "failure"):
            self.findings.append(
                document.error(
                    join_path(path, "rawType"), "must be success or failure", raw_type
                )
            )
            indicator.ok = False
            return
        query = self._metric_query(
            document, ratio["raw"], join_path(path, "raw"), indicator
        )
        if query is None:
            indicator.ok = False
            return
        expr = promql.fill_go_template_window(query).strip()
        if raw_type == "success":
            expr = f"1 - (\n{expr}\n)" if "\n" in expr else f"1 - ({expr})"
        indicator.fields["spec.indicator.raw.errorRatio"] = expr
        indicator.origins["spec.indicator.raw.errorRatio"] = (origin, query)

    def _metric_query(
        self, document: SourceDocument, metric: Any, path: str, indicator: _Indicator
    ) -> str | None:
        """The PromQL of one metric, once its source is known to be Prometheus."""
        metric = mapping_at(document, metric, path, self.findings)
        if self.version == V2ALPHA:
            unknown_fields(
                document,
                metric,
                path,
                ("dataSourceRef", "dataSourceSpec", "spec"),
                self.findings,
            )
            source_type = (metric.get("dataSourceSpec") or {}).get("type")
            ref, spec, spec_path = (
                metric.get("dataSourceRef"),
                metric.get("spec"),
                join_path(path, "spec"),
            )
            type_path = join_path(path, "dataSourceSpec.type")
        elif self.version == V1ALPHA:
            unknown_fields(
                document,
                metric,
                path,
                ("source", "queryType", "query", "metadata"),
                self.findings,
            )
            source_type, ref, spec, spec_path = metric.get("source"), None, metric, path
            type_path = join_path(path, "source")
        else:
            unknown_fields(document, metric, path, ("metricSource",), self.findings)
            source_path = join_path(path, "metricSource")
            source = mapping_at(
                document, metric.get("metricSource"), source_path, self.findings
            )
            unknown_fields(
                document,
                source,
                source_path,
                ("metricSourceRef", "type", "spec"),
                self.findings,
            )
            source_type, ref, spec = (
                source.get("type"),
                source.get("metricSourceRef"),
                source.get("spec"),
            )
            spec_path, type_path = (
                join_path(source_path, "spec"),
                join_path(source_path, "type"),
            )

        if not self._prometheus(document, source_type, ref, type_path, path, indicator):
            return None
        spec = mapping_at(document, spec, spec_path, self.findings)
        return text_at(document, spec, spec_path, "query", self.findings, required=True)

    def _prometheus(
        self,
        document: SourceDocument,
        source_type: Any,
        ref: Any,
        type_path: str,
        path: str,
        indicator: _Indicator,
    ) -> bool:
        source = (
            self.context.find(_family(self.version), "DataSource", ref)
            if isinstance(ref, str)
            else None
        )
        if source is not None and source_type is None:
            source_type = (source.body.get("spec") or {}).get("type")
            type_path = path
        if source_type is None:
            what = (
                f"data source {ref!r} is not among the inputs"
                if ref
                else "no metric source type is given"
            )
            self.findings.append(
                document.note(
                    path, f"{what}: taken to be Prometheus, at the default datasource"
                )
            )
            return True
        if not isinstance(source_type, str) or source_type.lower() != "prometheus":
            self.findings.append(
                document.error(
                    type_path,
                    "cannot be carried over: only Prometheus metric sources can be "
                    "measured",
                    source_type,
                )
            )
            return False
        if source is not None:
            url = _connection_url(source.body.get("spec"))
            if url:
                indicator.datasource_urls.add(url)
        return True

    def _events_query(
        self, document: SourceDocument, query: str, path: str, counter: Any
    ) -> dict[str, str] | None:
        """A query returning events of ``$window``; None (and an error) if it cannot."""
        expr = promql.fill_go_template_window(query).strip()
        if promql.has_window(expr):
            counted, rewrites = promql.rates_to_increases(expr)
            if rewrites:
                self.findings.append(
                    document.note(
                        path,
                        "rate(…[{{.window}}]) written as increase(…[$window]): "
                        "native queries count the events of the window",
                    )
                )
            return {"expr": counted}
        if counter is True and promql.is_selector(expr):
            return {"metric": expr}
        wrapped = promql.counter_sum_over_window(expr) if counter is True else None
        if wrapped:
            self.findings.append(
                document.note(
                    path,
                    f"counter query written as {wrapped}: native queries count the "
                    "events of the window",
                    query,
                )
            )
            return {"expr": wrapped}
        self.findings.append(
            document.error(
                path,
                "cannot tell the events of a window from this query: use {{.window}} "
                "as "
                "its range, or mark a plain counter selector with counter: true",
                query,
            )
        )
        return None

    # Alerting -------------------------------------------------------------------

    def _alerting(
        self, spec: dict[str, Any]
    ) -> list[tuple[str, dict[str, Any]]] | None:
        policies = list_at(
            self.document,
            spec.get("alertPolicies"),
            "spec.alertPolicies",
            self.findings,
        )
        if not policies:
            self.note(
                "spec",
                "no alert policies: the google preset, the native default, applies",
            )
            return None
        rows: list[tuple[str, dict[str, Any]]] = []
        for index, policy in enumerate(policies):
            rows.extend(self._policy(policy, join_path("spec.alertPolicies", index)))
        if not rows:
            self.note(
                "spec.alertPolicies",
                "no burn-rate condition could be carried over: the google preset "
                "applies",
            )
            return None
        return rows

    def _policy(self, policy: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
        policy = mapping_at(self.document, policy, path, self.findings)
        document, spec_path, origin = self.document, join_path(path, "spec"), path
        if "alertPolicyRef" in policy:
            found = self.context.find(
                _family(self.version), "AlertPolicy", policy["alertPolicyRef"]
            )
            if found is None:
                self.note(
                    join_path(path, "alertPolicyRef"),
                    "names no AlertPolicy among the inputs: its alerts are not "
                    "carried over",
                    policy["alertPolicyRef"],
                )
                return []
            document, policy, spec_path = found, found.body, "spec"
        spec = mapping_at(document, policy.get("spec"), spec_path, self.findings)
        not_carried(
            document,
            spec,
            spec_path,
            (
                "notificationTargets",
                "alertWhenNoData",
                "alertWhenResolved",
                "alertWhenBreaching",
            ),
            "alerts are routed and resolved by Alertmanager",
            self.findings,
        )
        rows = []
        conditions = list_at(
            document,
            spec.get("conditions"),
            join_path(spec_path, "conditions"),
            self.findings,
        )
        for index, condition in enumerate(conditions):
            row = self._condition(
                document, condition, join_path(spec_path, "conditions", index)
            )
            if row is not None:
                rows.append((origin, row))
        return rows

    def _condition(
        self, document: SourceDocument, condition: Any, path: str
    ) -> dict[str, Any] | None:
        condition = mapping_at(document, condition, path, self.findings)
        if "conditionRef" in condition:
            found = self.context.find(
                _family(self.version), "AlertCondition", condition["conditionRef"]
            )
            if found is None:
                self.findings.append(
                    document.note(
                        join_path(path, "conditionRef"),
                        "names no AlertCondition among the inputs: not carried over",
                        condition["conditionRef"],
                    )
                )
                return None
            document, condition, path = found, found.body, ""
        spec_path = join_path(path, "spec")
        spec = mapping_at(document, condition.get("spec"), spec_path, self.findings)
        rule_path = join_path(spec_path, "condition")
        rule = mapping_at(document, spec.get("condition"), rule_path, self.findings)
        if rule.get("kind") != "burnrate":
            self.findings.append(
                document.note(
                    join_path(rule_path, "kind"),
                    "not carried over: only burnrate conditions become burn-rate rows",
                    rule.get("kind"),
                )
            )
            return None
        if rule.get("op") not in ("gt", "gte"):
            self.findings.append(
                document.note(
                    join_path(rule_path, "op"),
                    "not carried over: a burn-rate row fires when the burn rate "
                    "exceeds its factor (op gt)",
                    rule.get("op"),
                )
            )
            return None
        threshold = rule.get("threshold")
        long_seconds = _shorthand_seconds(rule.get("lookbackWindow"))
        if long_seconds is None:
            self.findings.append(
                document.note(
                    join_path(rule_path, "lookbackWindow"),
                    "not carried over: not a duration like 1h or 1d",
                    rule.get("lookbackWindow"),
                )
            )
            return None
        short_seconds = max(60, round(long_seconds / _SHORT_WINDOW_DIVISOR / 60) * 60)
        severity = (
            "page"
            if str(spec.get("severity", "")).lower() in _PAGE_SEVERITIES
            else "ticket"
        )
        self.findings.append(
            document.note(
                rule_path,
                f"burn-rate row: {severity}, factor {threshold}, long window "
                f"{rule.get('lookbackWindow')}, short window "
                f"{format_duration(short_seconds)} "
                "(a twelfth of the long one, as the SRE workbook pairs them)",
            )
        )
        not_carried(
            document,
            rule,
            rule_path,
            ["alertAfter"],
            "burn-rate rows fire as soon as both windows exceed the factor",
            self.findings,
        )
        return {
            "severity": severity,
            "longWindow": long_seconds,
            "shortWindow": short_seconds,
            "factor": threshold,
        }


def _apply_indicator(draft: Draft, indicator: _Indicator) -> None:
    for path, value in indicator.fields.items():
        source, source_value = indicator.origins[path]
        draft.put(path, value, source=source, source_value=source_value)
    if len(indicator.datasource_urls) == 1:
        (url,) = indicator.datasource_urls
        draft.put("spec.datasource.url", url, source="spec")


def _apply_alerting(draft: Draft, rows: list[tuple[str, dict[str, Any]]]) -> None:
    draft.put(
        "spec.alerting.rows", [row for _, row in rows], source="spec.alertPolicies"
    )
    for index, (origin, _) in enumerate(rows):
        draft.trace(f"spec.alerting.rows[{index}]", source=origin)


def _parse_shorthand(text: Any) -> tuple[int, str] | None:
    match = _SHORTHAND.match(text) if isinstance(text, str) else None
    if not match or int(match.group(1)) <= 0:
        return None
    return int(match.group(1)), match.group(2)


def _shorthand_seconds(text: Any) -> int | None:
    parsed = _parse_shorthand(text)
    if parsed is None:
        return None
    amount, unit = parsed
    unit_seconds = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    if unit in _LONG_UNIT_DAYS:
        return amount * _LONG_UNIT_DAYS[unit] * 86400
    return amount * unit_seconds[unit]


def _connection_url(spec: Any) -> str | None:
    details = spec.get("connectionDetails") if isinstance(spec, dict) else None
    entries = details if isinstance(details, list) else [details]
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            return str(entry["url"])
    return None
