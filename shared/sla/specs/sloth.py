"""Sloth specs: ``prometheus/v1`` files and ``sloth.slok.dev/v1`` objects.

Each SLO of a service level becomes one SLODefinition named ``<service>-<slo>``,
Sloth's own SLO id. Sloth has no period field (its CLI's default is 30 days),
fills ``{{.window}}`` per window, and alerts with the SRE workbook's table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sla.model.durations import parse_duration
from sla.model.slo import SLODefinition
from sla.specs import promql
from sla.specs.document import (
    Conversion,
    Finding,
    RunContext,
    SourceDocument,
    join_path,
    unknown_kind,
)
from sla.specs.draft import Draft, build
from sla.specs.fields import (
    decimal_of,
    label_map,
    list_at,
    mapping_at,
    not_carried,
    object_name,
    text_at,
    unknown_fields,
)

API_VERSION = "sloth.slok.dev/v1"
FILE_VERSION = "prometheus/v1"

SLOTH_PERIOD = "30d"
"""Sloth's ``--default-slo-period``; its specs cannot set a period."""

# The google preset's rows at 30 days (DESIGN.md, from the SRE workbook), for a
# spec that keeps only one severity.
_GOOGLE_30D_ROWS = {
    "page": [
        {"severity": "page", "longWindow": "1h", "shortWindow": "5m", "factor": 14.4},
        {"severity": "page", "longWindow": "6h", "shortWindow": "30m", "factor": 6},
    ],
    "ticket": [
        {"severity": "ticket", "longWindow": "1d", "shortWindow": "2h", "factor": 3},
        {"severity": "ticket", "longWindow": "3d", "shortWindow": "6h", "factor": 1},
    ],
}


@dataclass(frozen=True)
class _Spelling:
    """Field names: snake_case in prometheus/v1 files, camelCase in the CRD."""

    error_query: str
    total_query: str
    error_ratio_query: str
    page_alert: str
    ticket_alert: str
    slo_plugins: str


_FILE = _Spelling(
    "error_query",
    "total_query",
    "error_ratio_query",
    "page_alert",
    "ticket_alert",
    "slo_plugins",
)
_CRD = _Spelling(
    "errorQuery",
    "totalQuery",
    "errorRatioQuery",
    "pageAlert",
    "ticketAlert",
    "sloPlugins",
)


_OTHER_SPELLING = {
    "page_alert": "pageAlert",
    "ticket_alert": "ticketAlert",
    "pageAlert": "page_alert",
    "ticketAlert": "ticket_alert",
}


def _spelt(body: dict[str, Any], key: str, other: str) -> str:
    return other if key not in body and other in body else key


def recognises(document: SourceDocument) -> bool:
    if document.api_version == API_VERSION:
        return True
    return not document.api_version and document.body.get("version") == FILE_VERSION


def convert(document: SourceDocument, context: RunContext) -> Conversion:
    if not document.api_version:
        return _service_level(document, document.body, "", _FILE, namespace=None)
    if document.kind == "PrometheusServiceLevel":
        return _custom_resource(document)
    if document.kind == "AlertWindows":
        return _alert_windows(document)
    return unknown_kind(document, API_VERSION, "PrometheusServiceLevel or AlertWindows")


def _custom_resource(document: SourceDocument) -> Conversion:
    findings: list[Finding] = []
    body = document.body
    unknown_fields(
        document,
        body,
        "",
        ("apiVersion", "kind", "metadata", "spec", "status"),
        findings,
    )
    metadata = mapping_at(document, body.get("metadata"), "metadata", findings)
    namespace = (
        metadata.get("namespace")
        if isinstance(metadata.get("namespace"), str)
        else None
    )
    spec = mapping_at(document, body.get("spec"), "spec", findings)
    result = _service_level(document, spec, "spec", _CRD, namespace=namespace)
    result.findings[:0] = findings
    return result


def _service_level(
    document: SourceDocument,
    spec: dict[str, Any],
    path: str,
    spelling: _Spelling,
    *,
    namespace: str | None,
) -> Conversion:
    findings: list[Finding] = []
    known = ["service", "labels", "slos", spelling.slo_plugins]
    if not path:
        known.append("version")
    unknown_fields(document, spec, path, known, findings)
    service = text_at(document, spec, path, "service", findings, required=True)
    labels = label_map(
        document, spec.get("labels"), join_path(path, "labels"), findings
    )
    not_carried(
        document,
        spec,
        path,
        [spelling.slo_plugins],
        "Sloth's rule-generation plugins are not run",
        findings,
    )
    metadata_labels: dict[str, str] = {}
    if path:
        metadata = document.body.get("metadata") or {}
        metadata_labels = label_map(
            document, metadata.get("labels"), "metadata.labels", findings
        )

    result = Conversion(findings=findings)
    slos = list_at(document, spec.get("slos"), join_path(path, "slos"), findings)
    if not slos:
        findings.append(
            document.error(join_path(path, "slos"), "at least one SLO is needed")
        )
    for index, slo in enumerate(slos):
        slo_path = join_path(path, "slos", index)
        if not isinstance(slo, dict):
            findings.append(document.error(slo_path, "must be a mapping", slo))
            continue
        context = _SLOContext(document, slo_path, spelling, service, namespace)
        result.extend(context.convert(slo, labels, metadata_labels))
    return result


class _SLOContext:
    """One entry of ``slos``, converted to one SLODefinition."""

    def __init__(
        self,
        document: SourceDocument,
        path: str,
        spelling: _Spelling,
        service: str | None,
        namespace: str | None,
    ) -> None:
        self.document = document
        self.path = path
        self.spelling = spelling
        self.service = service
        self.namespace = namespace
        self.findings: list[Finding] = []
        self.draft = Draft({"apiVersion": "sla.dev/v1alpha1", "kind": "SLODefinition"})

    def convert(
        self,
        slo: dict[str, Any],
        service_labels: dict[str, str],
        metadata_labels: dict[str, str],
    ) -> Conversion:
        document, path, draft = self.document, self.path, self.draft
        known = (
            "name",
            "objective",
            "description",
            "labels",
            "sli",
            "alerting",
            "plugins",
        )
        unknown_fields(document, slo, path, known, self.findings)
        self._metadata(slo, metadata_labels)
        labels = service_labels | label_map(
            document, slo.get("labels"), join_path(path, "labels"), self.findings
        )
        draft.put("spec.labels", labels, source=join_path(path, "labels"))
        self._objective(slo.get("objective"), join_path(path, "objective"))
        if isinstance(slo.get("description"), str):
            draft.put(
                "spec.description",
                slo["description"],
                source=join_path(path, "description"),
            )
        draft.put("spec.window", SLOTH_PERIOD, source=path)
        self.findings.append(
            document.note(
                path,
                f"window {SLOTH_PERIOD}: Sloth's default SLO period, as its specs "
                "cannot set one",
            )
        )
        not_carried(
            document,
            slo,
            path,
            ["plugins"],
            "Sloth's rule-generation plugins are not run",
            self.findings,
        )
        self._indicator(slo.get("sli"), join_path(path, "sli"))
        self._alerting(slo.get("alerting"), join_path(path, "alerting"))
        return self._finish()

    def _objective(self, objective: Any, path: str) -> None:
        percent = decimal_of(objective)
        if objective is None:
            self.findings.append(self.document.error(path, "required field is missing"))
        elif percent is None:
            message = "must be a percent such as 99.9"
            self.findings.append(self.document.error(path, message, objective))
        else:
            self.draft.put(
                "spec.objective", percent, source=path, source_value=objective
            )

    def _metadata(self, slo: dict[str, Any], metadata_labels: dict[str, str]) -> None:
        name_path = join_path(self.path, "name")
        name = text_at(
            self.document, slo, self.path, "name", self.findings, required=True
        )
        if name is None or self.service is None:
            return
        native_name = object_name(
            self.document, f"{self.service}-{name}", name_path, self.findings
        )
        self.draft.put(
            "metadata.name", native_name, source=name_path, source_value=name
        )
        if self.namespace:
            self.draft.put(
                "metadata.namespace", self.namespace, source="metadata.namespace"
            )
        if metadata_labels:
            self.draft.put("metadata.labels", metadata_labels, source="metadata.labels")
        self.draft.put("spec.service", self.service, source="service")

    def _indicator(self, sli: Any, path: str) -> None:
        document, spelling = self.document, self.spelling
        sli = mapping_at(document, sli, path, self.findings)
        unknown_fields(document, sli, path, ("events", "raw", "plugin"), self.findings)
        given = [key for key in ("events", "raw", "plugin") if sli.get(key) is not None]
        if len(given) != 1:
            found = ", ".join(given) or "none"
            self.findings.append(
                document.error(
                    path, f"give exactly one of events, raw or plugin (found {found})"
                )
            )
            return
        if "plugin" in given:
            plugin = sli["plugin"]
            plugin_id = plugin.get("id") if isinstance(plugin, dict) else None
            self.findings.append(
                document.error(
                    join_path(path, "plugin"),
                    "cannot be carried over: an SLI plugin is Go code that Sloth runs "
                    "to write the queries; write the SLI as events or raw",
                    plugin_id if plugin_id is not None else plugin,
                )
            )
            return
        if "raw" in given:
            raw_path = join_path(path, "raw")
            raw = mapping_at(document, sli["raw"], raw_path, self.findings)
            unknown_fields(
                document, raw, raw_path, (spelling.error_ratio_query,), self.findings
            )
            text = text_at(
                document,
                raw,
                raw_path,
                spelling.error_ratio_query,
                self.findings,
                required=True,
            )
            if text is not None:
                field = join_path(raw_path, spelling.error_ratio_query)
                expr = self._filled(text, field)
                self.draft.put(
                    "spec.indicator.raw.errorRatio",
                    expr,
                    source=field,
                    source_value=text,
                )
            return

        events_path = join_path(path, "events")
        events = mapping_at(document, sli["events"], events_path, self.findings)
        keys = (spelling.error_query, spelling.total_query)
        unknown_fields(document, events, events_path, keys, self.findings)
        for key, role in zip(keys, ("bad", "total"), strict=True):
            text = text_at(
                document, events, events_path, key, self.findings, required=True
            )
            if text is None:
                continue
            field = join_path(events_path, key)
            expr = self._counted(self._filled(text, field), field)
            self.draft.put(
                f"spec.indicator.ratio.{role}",
                {"expr": expr},
                source=field,
                source_value=text,
            )

    def _filled(self, text: str, field: str) -> str:
        expr = promql.fill_go_template_window(text).strip()
        if not promql.has_window(expr):
            self.findings.append(
                self.document.error(
                    field, "must use {{.window}} where the window goes", text
                )
            )
        return expr

    def _counted(self, expr: str, field: str) -> str:
        counted, rewrites = promql.rates_to_increases(expr)
        if rewrites:
            self.findings.append(
                self.document.note(
                    field,
                    "rate(…[{{.window}}]) written as increase(…[$window]): native "
                    "queries count the events of the window",
                )
            )
        return counted

    def _alerting(self, alerting: Any, path: str) -> None:
        document = self.document
        page_key, ticket_key = self.spelling.page_alert, self.spelling.ticket_alert
        alerting = mapping_at(document, alerting, path, self.findings)
        known = (
            "name",
            "labels",
            "annotations",
            page_key,
            ticket_key,
            _OTHER_SPELLING[page_key],
            _OTHER_SPELLING[ticket_key],
        )
        unknown_fields(document, alerting, path, known, self.findings)
        not_carried(
            document,
            alerting,
            path,
            ("name", "labels", "annotations"),
            "native burn-rate alerts carry their own name and labels",
            self.findings,
        )
        enabled = []
        for key, severity in ((page_key, "page"), (ticket_key, "ticket")):
            # Sloth's own examples write the file spelling inside the CRD too.
            key = _spelt(alerting, key, _OTHER_SPELLING[key])
            alert_path = join_path(path, key)
            alert = mapping_at(document, alerting.get(key), alert_path, self.findings)
            unknown_fields(
                document,
                alert,
                alert_path,
                ("disable", "labels", "annotations"),
                self.findings,
            )
            not_carried(
                document,
                alert,
                alert_path,
                ("labels", "annotations"),
                "native burn-rate alerts carry their own labels",
                self.findings,
            )
            if alert.get("disable") is not True:
                enabled.append(severity)

        if len(enabled) == 2:
            self.draft.put("spec.alerting.preset", "google", source=path)
            self.findings.append(
                document.note(
                    path,
                    "alerting: google preset, the SRE workbook table Sloth alerts with",
                )
            )
            return
        rows = [row for severity in enabled for row in _GOOGLE_30D_ROWS[severity]]
        self.draft.put("spec.alerting.rows", rows, source=path)
        if enabled:
            self.findings.append(
                document.note(
                    path,
                    f"alerting: the google preset's {enabled[0]} rows for 30 days; "
                    "the other severity is disabled",
                )
            )

    def _finish(self) -> Conversion:
        if any(f.severity == "error" for f in self.findings):
            return Conversion(findings=self.findings)
        if self.namespace is None:
            self.draft.body.setdefault("metadata", {}).setdefault(
                "namespace", "default"
            )
        built = build(SLODefinition, self.draft, self.document, fallback=self.path)
        if isinstance(built, Conversion):
            built.findings[:0] = self.findings
            return built
        return Conversion(objects=[built], findings=self.findings)


def _alert_windows(document: SourceDocument) -> Conversion:
    """A catalogue of burn-rate windows; checked, then reported as not applied."""
    findings: list[Finding] = []
    spec = mapping_at(document, document.body.get("spec"), "spec", findings)
    period = spec.get("sloPeriod")
    try:
        parse_duration(str(period))
    except ValueError as exc:
        findings.append(document.error("spec.sloPeriod", str(exc), period))
    for severity in ("page", "ticket"):
        for speed in ("quick", "slow"):
            entry_path = join_path("spec", severity, speed)
            entry = (
                spec.get(severity, {}).get(speed)
                if isinstance(spec.get(severity), dict)
                else None
            )
            if not isinstance(entry, dict):
                findings.append(document.error(entry_path, "required field is missing"))
                continue
            for key in ("shortWindow", "longWindow"):
                try:
                    parse_duration(str(entry.get(key)))
                except ValueError as exc:
                    findings.append(
                        document.error(
                            join_path(entry_path, key), str(exc), entry.get(key)
                        )
                    )
    findings.append(
        document.note(
            "spec",
            "Sloth alert-window catalogue: no native object; converted Sloth SLOs "
            "use the google preset, which is Sloth's default catalogue",
        )
    )
    return Conversion(findings=findings)
