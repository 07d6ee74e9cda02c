"""Prometheus recording rules and burn-rate alerts for SLOs, as plain Python data.

``sla rules`` writes these so burn-rate alerts fire from Prometheus itself, even
while the functions are scaled to zero. Everything here is pure: SLOs in, rule
groups (dicts ready for YAML) and notes out.

Recorded series, one set per SLO and per window of its burn-rate table, each
labelled ``namespace``, ``slo`` (the SLO's name), ``service`` and ``window`` (the
window as a duration, ``5m``, ``1h``, ``1d``)::

    sla_slo:total_events{namespace, slo, service, window}   events in the window
    sla_slo:bad_events{namespace, slo, service, window}     bad events in the window
    sla_slo:error_ratio{namespace, slo, service, window}    bad / total

The counts are the engine's own (``increase()`` of the indicator's counters, as
:func:`sla.services.queries.count_queries` writes them), so a window's ratio is
Σbad / Σtotal, never an average of ratios. An absent counted series means none were
counted, as in the engine. A window with no traffic records a total of 0 and no
error ratio at all: the division is guarded with ``total > 0``, so an idle service
neither reads 0 % errors nor produces a NaN. A raw indicator records its own error
ratio (NaN dropped), with a total of 1 and a bad count equal to the ratio per
window: the engine counts a raw window the same way.

Composite SLOs are supported: their totals and bad counts are the weighted sums of
their components' recorded series, window by window, and components record every
window their composites need. A composite reads what its components' groups
recorded, so it may lag them by one evaluation interval.

Alerts: one ``SLOErrorBudgetBurn`` alert per row of the burn-rate table, labelled
``severity`` (page or ticket), ``long_window`` and ``short_window`` besides the
recorded series' labels and the SLO's own ``spec.labels``. It fires when the error
ratio over both windows exceeds ``factor × (1 − objective)``; its value is the burn
rate over the long window. No ``for``: the short window already keeps the alert
from firing on a blip and makes it stop soon after the burn does, which is what
the multiwindow table is for; a ``for`` would only delay a page.

Burn-rate windows are rolling even for calendar SLOs, and they count occurrences
whatever the budgeting method, as the engine's burn rates do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from sla.budget.windows import BurnRateTable, BurnRateWindow, burn_rate_table
from sla.clients.promql import label_matcher
from sla.errors import SpecError
from sla.model.durations import format_duration
from sla.model.slo import SLODefinition
from sla.services.queries import CountQueries, count_queries, fill_window

TOTAL_EVENTS: Final = "sla_slo:total_events"
BAD_EVENTS: Final = "sla_slo:bad_events"
ERROR_RATIO: Final = "sla_slo:error_ratio"
ALERT_NAME: Final = "SLOErrorBudgetBurn"

# Labels the rules set themselves; an SLO's spec.labels may not override them.
RESERVED_LABELS: Final = frozenset(
    {
        "alertname",
        "namespace",
        "slo",
        "service",
        "window",
        "severity",
        "long_window",
        "short_window",
    }
)
_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# Kubernetes object names are DNS subdomains of at most 253 characters.
MAX_OBJECT_NAME: Final = 253
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "sla"}

Document = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """A note or an error about one SLO (``namespace/name``)."""

    slo: str
    message: str

    def describe(self) -> str:
        return f"{self.slo}: {self.message}"


@dataclass(frozen=True)
class SLORules:
    """The rule group of one SLO, with the notes that belong to it."""

    slo: SLODefinition
    group: Document
    notes: tuple[Problem, ...] = ()


@dataclass
class RulesResult:
    """Groups of the SLOs that have rules, sorted by SLO, and errors of the rest."""

    rules: list[SLORules] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)

    @property
    def notes(self) -> list[Problem]:
        return [note for entry in self.rules for note in entry.notes]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Plan:
    """What one SLO needs: its table and every window to record."""

    slo: SLODefinition
    table: BurnRateTable
    windows: set[int]


def build_rules(
    slos: Iterable[SLODefinition], *, scrape_interval: int = 60
) -> RulesResult:
    """Recording rules and burn-rate alerts for ``slos``, one group per SLO.

    An SLO whose table cannot be built (a short window raised onto its long one), or
    a composite whose components are not among ``slos``, is an error and gets no
    group; the others are unaffected.
    """
    result = RulesResult()
    plans: dict[str, _Plan] = {}
    for slo in sorted(slos, key=lambda s: s.key):
        try:
            table = burn_rate_table(slo.spec, scrape_interval=scrape_interval)
        except SpecError as error:
            result.errors.append(Problem(slo.key, f"burn-rate table: {error.message}"))
            continue
        plans[slo.key] = _Plan(slo, table, set(table.windows))
    _check_composites(plans, result.errors)
    _share_windows(plans)
    for plan in plans.values():
        group = _group(plan, interval=scrape_interval)
        result.rules.append(SLORules(plan.slo, group, _notes(plan)))
    return result


# -- composites -----------------------------------------------------------------


def _component_keys(slo: SLODefinition) -> list[str]:
    composite = slo.spec.indicator.composite
    if composite is None:
        return []
    return [f"{slo.metadata.namespace}/{part.slo}" for part in composite.components]


def _check_composites(plans: dict[str, _Plan], errors: list[Problem]) -> None:
    """Drop composites whose components have no rules of their own here."""
    for key in [k for k, plan in plans.items() if plan.slo.spec.indicator.composite]:
        for component in _component_keys(plans[key].slo):
            part = plans.get(component)
            if part is None:
                reason = "is not among the SLOs given, or has no rules"
            elif part.slo.spec.indicator.composite is not None:
                reason = "is itself a composite"
            else:
                continue
            errors.append(Problem(key, f"composite component {component} {reason}"))
            del plans[key]
            break


def _share_windows(plans: dict[str, _Plan]) -> None:
    """Components record every window their composites read, as the engine asks."""
    for plan in plans.values():
        for component in _component_keys(plan.slo):
            plans[component].windows |= plan.windows


# -- one group --------------------------------------------------------------------


def _group(plan: _Plan, *, interval: int) -> Document:
    rules: list[Document] = []
    for seconds in sorted(plan.windows):
        rules += _recording_rules(plan.slo, seconds)
    rules += [_alert(plan.slo, row) for row in plan.table.rows]
    return {
        "name": group_name(plan.slo),
        # A rule evaluated more often than samples arrive sees nothing new; less
        # often only delays the alerts.
        "interval": format_duration(interval),
        "rules": rules,
    }


def group_name(slo: SLODefinition) -> str:
    return f"sla/{slo.metadata.namespace}/{slo.metadata.name}"


def _recording_rules(slo: SLODefinition, seconds: int) -> list[Document]:
    indicator = slo.spec.indicator
    if indicator.composite is not None:
        return _composite_rules(slo, seconds)
    queries = count_queries(indicator)
    if queries is None:
        return _raw_rules(slo, seconds)
    return _counting_rules(slo, queries, seconds)


def _record(name: str, expr: str, slo: SLODefinition, seconds: int) -> Document:
    return {"record": name, "expr": expr, "labels": series_labels(slo, seconds)}


def series_labels(slo: SLODefinition, seconds: int) -> dict[str, str]:
    return {
        "namespace": slo.metadata.namespace,
        "service": slo.spec.service,
        "slo": slo.metadata.name,
        "window": format_duration(seconds),
    }


def selector(metric: str, namespace: str, name: str, seconds: int | None = None) -> str:
    """``metric{namespace="…", slo="…", window="…"}`` with every value escaped."""
    matchers = [label_matcher("namespace", namespace), label_matcher("slo", name)]
    if seconds is not None:
        matchers.append(label_matcher("window", format_duration(seconds)))
    return f"{metric}{{{', '.join(matchers)}}}"


def _own(metric: str, slo: SLODefinition, seconds: int) -> str:
    return selector(metric, slo.metadata.namespace, slo.metadata.name, seconds)


def _ratio_rule(slo: SLODefinition, seconds: int) -> Document:
    # Zero traffic filters the denominator away: no sample, rather than 0 or NaN.
    bad, total = _own(BAD_EVENTS, slo, seconds), _own(TOTAL_EVENTS, slo, seconds)
    return _record(ERROR_RATIO, f"{bad}\n/\n({total} > 0)", slo, seconds)


def _counting_rules(
    slo: SLODefinition, queries: CountQueries, seconds: int
) -> list[Document]:
    counted, total = (one_series(expr) for expr in queries.for_range(seconds))
    recorded_total = _own(TOTAL_EVENTS, slo, seconds)
    # An absent counted series counts none (the engine's rule); an absent total
    # leaves the window without data, so bad is recorded only beside a total.
    if queries.counts_bad:
        bad = f"({counted} or vector(0))\nand on ()\n{recorded_total}"
    else:
        bad = f"{recorded_total}\n- on ()\n({counted} or vector(0))"
    return [
        _record(TOTAL_EVENTS, total, slo, seconds),
        _record(BAD_EVENTS, bad, slo, seconds),
        _ratio_rule(slo, seconds),
    ]


def _raw_rules(slo: SLODefinition, seconds: int) -> list[Document]:
    assert slo.spec.indicator.raw is not None
    expr = fill_window(slo.spec.indicator.raw.error_ratio, seconds)
    ratio = _own(ERROR_RATIO, slo, seconds)
    return [
        # NaN (the expression's own 0/0 on an idle window) compares false: no sample.
        _record(ERROR_RATIO, f"({expr})\n>= 0", slo, seconds),
        # One event per window, as the engine counts a raw window, for composites.
        _record(TOTAL_EVENTS, f"{ratio} * 0 + 1", slo, seconds),
        _record(BAD_EVENTS, ratio, slo, seconds),
    ]


def _composite_rules(slo: SLODefinition, seconds: int) -> list[Document]:
    return [
        _record(TOTAL_EVENTS, _weighted_sum(TOTAL_EVENTS, slo, seconds), slo, seconds),
        _record(BAD_EVENTS, _weighted_sum(BAD_EVENTS, slo, seconds), slo, seconds),
        _ratio_rule(slo, seconds),
    ]


def _weighted_sum(metric: str, slo: SLODefinition, seconds: int) -> str:
    """``Σ weight × component``; ``or`` keeps the present ones, as the engine does."""
    composite = slo.spec.indicator.composite
    assert composite is not None
    namespace = slo.metadata.namespace
    terms = [
        _scaled(part.weight, selector(metric, namespace, part.slo, seconds))
        for part in composite.components
    ]
    return "sum(\n  " + "\n  or\n  ".join(terms) + "\n)"


def _scaled(weight: float, expr: str) -> str:
    return expr if weight == 1 else f"{number(weight)} * {expr}"


def one_series(expr: str) -> str:
    """``expr`` summed to one label-free series, unless it already is a ``sum(…)``.

    The engine refuses an expression returning several series; summing here keeps
    the recorded labels exactly the SLO's, so the ratio's vector matching holds.
    """
    return expr if _is_outer_sum(expr) else f"sum({expr})"


def _is_outer_sum(expr: str) -> bool:
    text = expr.strip()
    if not (text.startswith("sum(") and text.endswith(")")):
        return False
    depth = 0
    for index, char in enumerate(text[3:], start=3):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return index == len(text) - 1
    return False


# -- alerts ---------------------------------------------------------------------


def allowed_bad_ratio(slo: SLODefinition) -> str:
    """``1 − objective`` as exact decimal text: 99.9 → ``0.001``."""
    value = Decimal(1) - slo.spec.objective / Decimal(100)
    return format(value.normalize(), "f")


def number(value: float | Fraction) -> str:
    """A PromQL number literal that reads back as the same float."""
    text = repr(float(value))
    return text.removesuffix(".0")


def _burn(slo: SLODefinition, seconds: int) -> str:
    ratio = _own(ERROR_RATIO, slo, seconds)
    return f"max without (window) ({ratio}) / {allowed_bad_ratio(slo)}"


def _alert(slo: SLODefinition, row: BurnRateWindow) -> Document:
    factor = number(row.factor)
    expr = (
        f"{_burn(slo, row.long_window)} > {factor}\n"
        f"and\n"
        f"{_burn(slo, row.short_window)} > {factor}"
    )
    return {
        "alert": ALERT_NAME,
        "expr": expr,
        "labels": _alert_labels(slo, row),
        "annotations": _annotations(slo, row),
    }


def _alert_labels(slo: SLODefinition, row: BurnRateWindow) -> dict[str, str]:
    labels = {
        name: template_literal(value)
        for name, value in slo.spec.labels.items()
        if _usable_label(name)
    }
    labels |= {
        "long_window": format_duration(row.long_window),
        "severity": row.severity,
        "short_window": format_duration(row.short_window),
        # The series carry them too; written here as well so that promtool's lint
        # does not take two SLOs' alerts for duplicates of one rule.
        "namespace": slo.metadata.namespace,
        "slo": slo.metadata.name,
    }
    return dict(sorted(labels.items()))


def _usable_label(name: str) -> bool:
    return bool(_LABEL_NAME.fullmatch(name)) and name not in RESERVED_LABELS


def _annotations(slo: SLODefinition, row: BurnRateWindow) -> dict[str, str]:
    factor = f"{float(row.factor):.4g}"
    long, short = format_duration(row.long_window), format_duration(row.short_window)
    window = slo.spec.window
    lasts = format_duration(round(Fraction(window.nominal_seconds) / row.factor))
    description = (
        f"Burn rate {{{{ $value | humanize }}}} over {long}, and above {factor} "
        f"over {short} too. Objective {slo.spec.objective} % over {window} "
        f"(allowed error ratio {allowed_bad_ratio(slo)}); at {factor}× the whole "
        f"budget lasts {lasts}."
    )
    if slo.spec.description:
        description += " " + template_literal(slo.spec.description)
    return {
        "description": description,
        "summary": (
            f"SLO {slo.key} (service {template_literal(slo.spec.service)}) burns "
            f"its error budget more than {factor}× too fast over {long} and {short}."
        ),
    }


def template_literal(text: str) -> str:
    """``text`` as Go template text that prints itself: no action can start in it.

    Alert labels and annotations are templates; a spec's ``{{`` must not run.
    """
    return text.replace("{{", '{{ "{{" }}')


# -- notes ------------------------------------------------------------------------


def _notes(plan: _Plan) -> tuple[Problem, ...]:
    slo = plan.slo
    notes = [Problem(slo.key, note) for note in plan.table.notes]
    skipped = sorted(name for name in slo.spec.labels if not _usable_label(name))
    if skipped:
        notes.append(
            Problem(
                slo.key,
                f"spec.labels {', '.join(skipped)} not put on the alerts: not a "
                "Prometheus label name, or one the rules set themselves",
            )
        )
    if slo.spec.datasource is not None and slo.spec.datasource.url:
        notes.append(
            Problem(
                slo.key,
                f"reads datasource {slo.spec.datasource.url}: load its rules into "
                "that Prometheus",
            )
        )
    if not plan.table.rows:
        notes.append(Problem(slo.key, "empty burn-rate table: no alerts"))
    return tuple(notes)


# -- documents --------------------------------------------------------------------


def rules_file(result: RulesResult) -> Document:
    """A Prometheus rules file: every SLO's group, sorted."""
    return {"groups": [entry.group for entry in result.rules]}


def prometheus_rules(result: RulesResult) -> list[Document]:
    """One ``monitoring.coreos.com/v1`` PrometheusRule per SLO, in its namespace.

    One object per SLO keeps names stable: adding an SLO adds an object and never
    renames another, so ``kubectl apply`` never leaves a stale copy firing twice.
    """
    return [prometheus_rule(entry) for entry in result.rules]


def prometheus_rule(entry: SLORules) -> Document:
    slo = entry.slo
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": rule_object_name(slo),
            "namespace": slo.metadata.namespace,
            # The SLO's labels, so a Prometheus ruleSelector that picks the SLOs'
            # team or release picks their rules too.
            "labels": dict(sorted((slo.metadata.labels | MANAGED_BY).items())),
            "annotations": {"sla.dev/slo": slo.key},
        },
        "spec": {"groups": [entry.group]},
    }


def rule_object_name(slo: SLODefinition) -> str:
    """``sla-<slo name>``, shortened with a hash when it would exceed 253."""
    name = f"sla-{slo.metadata.name}"
    if len(name) <= MAX_OBJECT_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: MAX_OBJECT_NAME - 11].rstrip('.-')}-{digest}"
