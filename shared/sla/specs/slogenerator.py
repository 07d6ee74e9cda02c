"""slo-generator ``sre.google.com/v2`` ServiceLevelObjective and its shared config.

slo-generator has no SLO window of its own: it checks each step of an
error-budget policy over that step's window. When the shared config
(``backends``, ``exporters``, ``error_budget_policies``) is among the inputs,
the SLO window is the policy's longest step and every alerting step becomes a
page row; without it the window is 28 days. ``[window]`` in queries is filled
per window. ``${VAR}`` placeholders are filled by slo-generator from its
environment; they are kept as written and reported.
"""

from __future__ import annotations

import re
from typing import Any

from sla.model.durations import format_duration
from sla.model.slo import WINDOW_PLACEHOLDER, SLODefinition
from sla.specs import promql
from sla.specs.document import (
    Conversion,
    Finding,
    RunContext,
    SourceDocument,
    join_path,
    unknown_kind,
)
from sla.specs.draft import DraftReader, build
from sla.specs.fields import (
    fraction_to_percent,
    mapping_at,
    not_carried,
    put_object_metadata,
    text_at,
    unknown_fields,
)

API_VERSION = "sre.google.com/v2"
CONFIG_KEYS = ("backends", "exporters", "error_budget_policies", "default_exporters")

DEFAULT_WINDOW = "28d"
"""The window when no shared config gives an error-budget policy."""

DEFAULT_OPERATORS = ["increase", "sum"]
"""slo-generator's Prometheus backend wraps a filter in these, innermost first."""

# The SRE workbook pairs each long window with a short one a twelfth as long.
_SHORT_WINDOW_DIVISOR = 12
_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def recognises(document: SourceDocument) -> bool:
    if document.api_version == API_VERSION:
        return True
    return is_shared_config(document)


def is_shared_config(document: SourceDocument) -> bool:
    body = document.body
    return not document.api_version and any(key in body for key in CONFIG_KEYS)


def convert(document: SourceDocument, context: RunContext) -> Conversion:
    if is_shared_config(document):
        return _shared_config(document)
    if document.kind != "ServiceLevelObjective":
        return unknown_kind(document, API_VERSION, "ServiceLevelObjective")
    return _Reader(document, context).convert()


def _shared_config(document: SourceDocument) -> Conversion:
    findings: list[Finding] = []
    unknown_fields(document, document.body, "", CONFIG_KEYS, findings)
    not_carried(
        document,
        document.body,
        "",
        ("backends", "exporters", "default_exporters"),
        "the native engine reads Prometheus itself and publishes its own events",
        findings,
    )
    policies = mapping_at(
        document,
        document.body.get("error_budget_policies"),
        "error_budget_policies",
        findings,
    )
    for name, policy in policies.items():
        path = join_path("error_budget_policies", str(name))
        _steps(document, policy, path, findings)
    findings.append(
        document.note(
            "",
            "no native object: its error-budget policies give the windows and alerts "
            "of the SLOs that use them",
        )
    )
    return Conversion(findings=findings)


def _steps(
    document: SourceDocument, policy: Any, path: str, findings: list[Finding]
) -> list[tuple[str, dict[str, Any]]]:
    """The steps of a policy with their paths; errors for steps without a window."""
    policy = mapping_at(document, policy, path, findings)
    steps_path = join_path(path, "steps")
    steps = policy.get("steps")
    if not isinstance(steps, list) or not steps:
        findings.append(
            document.error(steps_path, "must list at least one step", steps)
        )
        return []
    valid = []
    for index, step in enumerate(steps):
        step_path = join_path(steps_path, index)
        window = step.get("window") if isinstance(step, dict) else None
        if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
            findings.append(
                document.error(
                    join_path(step_path, "window"),
                    "must be a positive number of seconds",
                    window,
                )
            )
            continue
        valid.append((step_path, step))
    return valid


class _Reader(DraftReader):
    def __init__(self, document: SourceDocument, context: RunContext) -> None:
        super().__init__(document)
        self.context = context

    def convert(self) -> Conversion:
        document, body = self.document, self.document.body
        unknown_fields(
            document,
            body,
            "",
            ("apiVersion", "kind", "metadata", "spec"),
            self.findings,
        )
        self._placeholders(body, "")
        metadata = mapping_at(document, body.get("metadata"), "metadata", self.findings)
        spec = mapping_at(document, body.get("spec"), "spec", self.findings)
        known = (
            "description",
            "backend",
            "method",
            "exporters",
            "service_level_indicator",
            "goal",
            "error_budget_policy",
            "frequency",
        )
        unknown_fields(document, spec, "spec", known, self.findings)
        self._metadata(metadata)
        if isinstance(spec.get("description"), str):
            self.draft.put(
                "spec.description", spec["description"], source="spec.description"
            )
        self._goal(spec.get("goal"))
        not_carried(
            document,
            spec,
            "spec",
            ("exporters", "frequency"),
            "the native engine publishes its own events on its own schedule",
            self.findings,
        )
        self._backend(spec.get("backend"))
        self._indicator(spec)
        self._policy(spec.get("error_budget_policy", "default"))
        if any(f.severity == "error" for f in self.findings):
            return Conversion(findings=self.findings)
        built = build(SLODefinition, self.draft, document, fallback="spec")
        if isinstance(built, Conversion):
            built.findings[:0] = self.findings
            return built
        return Conversion(objects=[built], findings=self.findings)

    def _placeholders(self, value: Any, path: str) -> None:
        """Report every ``${VAR}``: slo-generator fills them, this tool does not."""
        if isinstance(value, dict):
            for key, item in value.items():
                self._placeholders(item, join_path(path, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._placeholders(item, join_path(path, index))
        elif isinstance(value, str) and _PLACEHOLDER.search(value):
            self.note(
                path,
                "kept as written: slo-generator fills ${…} from its environment, "
                "this tool does not",
                value,
            )

    def _metadata(self, metadata: dict[str, Any]) -> None:
        name, native, labels = put_object_metadata(
            self.document, metadata, self.draft, self.findings
        )
        if name is None:
            return
        service = labels.get("service_name")
        if service:
            self.draft.put(
                "spec.service", service, source="metadata.labels.service_name"
            )
        else:
            self.draft.put("spec.service", native, source="metadata.name")
            self.note(
                "metadata.labels",
                f"no service_name label: spec.service is the SLO's name {native!r}",
            )

    def _goal(self, goal: Any) -> None:
        if goal is None:
            self.error("spec.goal", "required field is missing")
            return
        percent = fraction_to_percent(goal)
        if percent is None:
            self.error("spec.goal", "must be a fraction such as 0.999", goal)
            return
        self.draft.put("spec.objective", percent, source="spec.goal", source_value=goal)

    def _backend(self, backend: Any) -> None:
        if backend is None:
            self.error("spec.backend", "required field is missing")
        elif backend != "prometheus":
            self.error(
                "spec.backend",
                "cannot be carried over: only the prometheus backend can be measured",
                backend,
            )
            return
        url = self._backend_url()
        if url and url.startswith(("http://", "https://")):
            self.draft.put(
                "spec.datasource.url", url, source="spec.backend", source_value=backend
            )

    def _backend_url(self) -> str | None:
        for config in self._configs():
            backends = config.body.get("backends")
            prometheus = (
                backends.get("prometheus") if isinstance(backends, dict) else None
            )
            url = prometheus.get("url") if isinstance(prometheus, dict) else None
            if isinstance(url, str):
                if _PLACEHOLDER.search(url):
                    self.note(
                        "spec.backend",
                        f"the shared config's Prometheus URL {url!r} is a "
                        "placeholder: the SLO uses the default datasource",
                    )
                    return None
                return url
        return None

    def _configs(self) -> list[SourceDocument]:
        return self.context.where(is_shared_config)

    def _indicator(self, spec: dict[str, Any]) -> None:
        path = "spec.service_level_indicator"
        sli = mapping_at(
            self.document, spec.get("service_level_indicator"), path, self.findings
        )
        method = spec.get("method")
        readers = {
            "good_bad_ratio": self._good_bad_ratio,
            "distribution_cut": self._distribution_cut,
            "query_sli": self._query_sli,
        }
        reader = readers.get(method) if isinstance(method, str) else None
        if reader is None:
            self.error("spec.method", f"must be one of {', '.join(readers)}", method)
            return
        reader(sli, path)

    def _good_bad_ratio(self, sli: dict[str, Any], path: str) -> None:
        unknown_fields(
            self.document,
            sli,
            path,
            ("filter_good", "filter_bad", "filter_valid", "operators"),
            self.findings,
        )
        operators = sli.get("operators", DEFAULT_OPERATORS)
        if not isinstance(operators, list) or not all(
            isinstance(op, str) for op in operators
        ):
            self.error(
                join_path(path, "operators"),
                "must be a list of PromQL function names",
                operators,
            )
            return
        if sli.get("filter_bad") is not None and sli.get("filter_valid") is not None:
            self.note(
                join_path(path, "filter_bad"),
                "not carried over: slo-generator counts bad events as filter_bad "
                "when given, and ignores filter_valid",
            )
        total_key = "filter_valid"
        if sli.get("filter_bad") is not None:
            # slo-generator takes good and bad; total is their sum.
            good = self._filter_query(sli, path, "filter_good", operators)
            bad = self._filter_query(sli, path, "filter_bad", operators)
            if good and bad:
                total = {"expr": f"({_as_expr(good)}) + ({_as_expr(bad)})"}
                self.draft.put(
                    "spec.indicator.ratio.good",
                    good,
                    source=join_path(path, "filter_good"),
                )
                self.draft.put(
                    "spec.indicator.ratio.total",
                    total,
                    source=join_path(path, "filter_bad"),
                )
                self.note(
                    join_path(path, "filter_bad"),
                    "total written as good + bad, as slo-generator counts it",
                )
            return
        for key, role in (("filter_good", "good"), (total_key, "total")):
            query = self._filter_query(sli, path, key, operators)
            if query is not None:
                self.draft.put(
                    f"spec.indicator.ratio.{role}",
                    query,
                    source=join_path(path, key),
                    source_value=sli.get(key),
                )

    def _filter_query(
        self, sli: dict[str, Any], path: str, key: str, operators: list[str]
    ) -> dict[str, str] | None:
        text = text_at(self.document, sli, path, key, self.findings, required=True)
        if text is None:
            return None
        expr = promql.fill_slo_generator_window(text.strip())
        if operators == DEFAULT_OPERATORS and promql.is_selector(expr):
            return {"metric": expr}
        if not promql.has_window(expr):
            expr = f"{expr}[{WINDOW_PLACEHOLDER}]"
        for operator in operators:
            expr = f"{operator}({expr})"
        return {"expr": expr}

    def _distribution_cut(self, sli: dict[str, Any], path: str) -> None:
        unknown_fields(
            self.document, sli, path, ("expression", "threshold_bucket"), self.findings
        )
        text = text_at(
            self.document, sli, path, "expression", self.findings, required=True
        )
        threshold = sli.get("threshold_bucket")
        if threshold is None:
            self.error(join_path(path, "threshold_bucket"), "required field is missing")
        if text is None or threshold is None:
            return
        expression_path = join_path(path, "expression")
        selector = promql.parse_selector(text.strip())
        if selector is None or not selector.name.endswith("_bucket"):
            self.error(expression_path, "must be a histogram's _bucket selector", text)
            return
        histogram = str(selector.renamed(selector.name.removesuffix("_bucket")))
        self.draft.put(
            "spec.indicator.latency.histogram",
            histogram,
            source=expression_path,
            source_value=text,
        )
        self.draft.put(
            "spec.indicator.latency.threshold",
            threshold,
            source=join_path(path, "threshold_bucket"),
        )

    def _query_sli(self, sli: dict[str, Any], path: str) -> None:
        unknown_fields(self.document, sli, path, ("expression",), self.findings)
        text = text_at(
            self.document, sli, path, "expression", self.findings, required=True
        )
        if text is None:
            return
        expression_path = join_path(path, "expression")
        expr = promql.fill_slo_generator_window(text.strip())
        if not promql.has_window(expr):
            self.error(expression_path, "must use [window] where the window goes", text)
            return
        # The expression gives the good ratio; the native raw indicator wants errors.
        error_ratio = f"1 - (\n{expr}\n)" if "\n" in expr else f"1 - ({expr})"
        self.draft.put(
            "spec.indicator.raw.errorRatio",
            error_ratio,
            source=expression_path,
            source_value=text,
        )
        self.note(
            expression_path, "the SLI it gives is written as the error ratio 1 - (…)"
        )

    def _policy(self, name: Any) -> None:
        path = "spec.error_budget_policy"
        configs = [
            c
            for c in self._configs()
            if isinstance(c.body.get("error_budget_policies"), dict)
        ]
        if not configs:
            self.draft.put("spec.window", DEFAULT_WINDOW, source="spec")
            self.note(
                "spec",
                f"window {DEFAULT_WINDOW}: no slo-generator shared config among the "
                "inputs gives an error-budget policy",
            )
            return
        config = next(
            (c for c in configs if name in c.body["error_budget_policies"]), None
        )
        if config is None:
            self.error(
                path,
                "names no policy of the shared config's error_budget_policies",
                name,
            )
            return
        policy_path = join_path("error_budget_policies", str(name))
        steps = _steps(
            config,
            config.body["error_budget_policies"][name],
            policy_path,
            self.findings,
        )
        if not steps:
            return
        longest = max(int(step["window"]) for _, step in steps)
        self.draft.put(
            "spec.window", format_duration(longest), source=path, source_value=name
        )
        self.note(
            path,
            f"window {format_duration(longest)}: the longest step of policy {name!r} "
            f"in {config.file}",
        )
        self._rows(config, steps, name)

    def _rows(
        self, config: SourceDocument, steps: list[tuple[str, dict[str, Any]]], name: Any
    ) -> None:
        rows = []
        for step_path, step in steps:
            if step.get("alert") is not True:
                self.findings.append(
                    config.note(
                        step_path,
                        "not carried over: a step without alert only reports",
                        step.get("name"),
                    )
                )
                continue
            long_window = int(step["window"])
            short_window = max(60, round(long_window / _SHORT_WINDOW_DIVISOR / 60) * 60)
            rows.append(
                {
                    "severity": "page",
                    "longWindow": long_window,
                    "shortWindow": short_window,
                    "factor": step.get("burn_rate_threshold"),
                }
            )
            self.draft.trace(
                f"spec.alerting.rows[{len(rows) - 1}]",
                source="spec.error_budget_policy",
                value=step,
            )
        self.draft.put(
            "spec.alerting.rows",
            rows,
            source="spec.error_budget_policy",
            source_value=name,
        )
        self.note(
            "spec.error_budget_policy",
            f"alerting: {len(rows)} page rows from the alerting steps of policy "
            f"{name!r}, "
            "each with a short window a twelfth of its own (the SRE workbook's "
            "pairing)",
        )


def _as_expr(query: dict[str, str]) -> str:
    if "expr" in query:
        return query["expr"]
    return f"sum(increase({query['metric']}[{WINDOW_PLACEHOLDER}]))"
