"""The system's state as metrics, read from the store when budget-api is scraped.

The functions scale to zero, so a gauge kept in the memory of the one that computed
it would vanish with it. budget-api reads the state at scrape time instead:

- ``sla_budget_remaining_percent``, ``sla_budget_consumed_percent`` {slo, namespace}:
  the latest snapshot's figures, 0–100 (below 0 when overspent); left out while an
  SLO has no figure.
- ``sla_budget_status`` {slo, namespace, status}: 1 for the current status, 0 for the
  four others; an SLO never evaluated reads ``no_data``.
- ``sla_burn_rate`` {slo, namespace, window}: the burn rate over each window.
- ``sla_freezes_active`` {namespace, policy}: 1 while the policy holds a freeze,
  0 once lifted (``sum`` counts freezes in force).
- ``sla_slos_total``, ``sla_policies_total`` {namespace}: the catalogue's size.
- ``sla_slo_violations_total`` {slo, namespace}, ``sla_freezes_activated_total`` and
  ``sla_freezes_resolved_total`` {namespace, policy}: counted from the audit log,
  which is append-only, so they never go down and survive every restart.

- the work counters every function adds to the store as it works
  (:mod:`sla.runtime.metrics`): ``sla_calculations_total``,
  ``sla_prometheus_queries_total`` {outcome}, ``sla_events_published_total`` {type,
  outcome} and the histograms ``sla_calculation_duration_seconds`` and
  ``sla_freeze_duration_seconds``, summed over every process that ever ran. The
  ``outcome`` series of calculations and queries are shown at 0 before anything is
  counted, so ``absent()`` and ``rate()`` see them from the first scrape.

``slo`` is ``namespace/name`` and ``policy`` likewise, as docs/deploy.md fixes
them; every label value names a catalogue object or is a fixed word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from sla.clients.store import CatalogueEntry, CounterValue, FreezeState, Store
from sla.clients.store.state_queries import DecisionCount
from sla.model.api import SloSummary
from sla.model.snapshot import STATUSES
from sla.runtime.metrics import (
    STORED_COUNTERS,
    STORED_HISTOGRAMS,
    StoredCounter,
    StoredHistogram,
    le,
)
from sla.services.budget_api import LatestBudgets, slo_summaries


@dataclass(frozen=True)
class SystemState:
    """What the state metrics are made of, read in one go."""

    slos: list[SloSummary] = field(default_factory=list)
    policies: list[CatalogueEntry] = field(default_factory=list)
    freezes: list[FreezeState] = field(default_factory=list)
    decisions: list[DecisionCount] = field(default_factory=list)
    counters: Sequence[CounterValue] = ()


async def read_state(store: Store, budgets: LatestBudgets) -> SystemState:
    return SystemState(
        slos=await slo_summaries(store, budgets),
        policies=await store.list_catalogue(kind="SLAPolicy"),
        freezes=await store.freeze_states(),
        decisions=await store.decision_counts(),
        counters=await store.read_counters(),
    )


def _namespace(key: str) -> str:
    return key.partition("/")[0]


def budget_metrics(slos: Iterable[SloSummary]) -> Iterator[Metric]:
    labels = ["slo", "namespace"]
    remaining = GaugeMetricFamily(
        "sla_budget_remaining_percent",
        "Error budget remaining, percent of the budget (below 0 when overspent).",
        labels=labels,
    )
    consumed = GaugeMetricFamily(
        "sla_budget_consumed_percent",
        "Error budget consumed, percent of the budget (above 100 when overspent).",
        labels=labels,
    )
    status = GaugeMetricFamily(
        "sla_budget_status",
        "1 for the SLO's current status, 0 for the others.",
        labels=[*labels, "status"],
    )
    burn = GaugeMetricFamily(
        "sla_burn_rate",
        "Burn rate of the error budget over a window (1 spends it in one window).",
        labels=[*labels, "window"],
    )
    for slo in slos:
        key = [slo.slo, slo.namespace]
        if slo.remaining is not None:
            remaining.add_metric(key, slo.remaining * 100)
        if slo.consumed is not None:
            consumed.add_metric(key, slo.consumed * 100)
        for name in STATUSES:
            status.add_metric([*key, name], 1.0 if name == slo.status else 0.0)
        for window, rate in slo.burn_rates.items():
            if rate is not None:
                burn.add_metric([*key, window], rate)
    yield from (remaining, consumed, status, burn)


def catalogue_metrics(state: SystemState) -> Iterator[Metric]:
    slos = GaugeMetricFamily(
        "sla_slos_total", "SLODefinitions in the catalogue.", labels=["namespace"]
    )
    for namespace, count in sorted(Counter(s.namespace for s in state.slos).items()):
        slos.add_metric([namespace], count)
    policies = GaugeMetricFamily(
        "sla_policies_total", "SLAPolicies in the catalogue.", labels=["namespace"]
    )
    by_namespace = Counter(p.namespace for p in state.policies)
    for namespace, count in sorted(by_namespace.items()):
        policies.add_metric([namespace], count)
    yield from (slos, policies)


def freeze_metrics(freezes: Iterable[FreezeState]) -> Iterator[Metric]:
    active = GaugeMetricFamily(
        "sla_freezes_active",
        "1 while the policy holds a freeze, 0 once lifted.",
        labels=["namespace", "policy"],
    )
    frozen: dict[str, bool] = {}
    for state in freezes:
        frozen[state.policy] = frozen.get(state.policy, False) or (
            state.state == "frozen"
        )
    for policy, held in sorted(frozen.items()):
        active.add_metric([_namespace(policy), policy], 1.0 if held else 0.0)
    yield active


def decision_metrics(decisions: Iterable[DecisionCount]) -> Iterator[Metric]:
    violations = CounterMetricFamily(
        "sla_slo_violations",
        "Times an SLO became exhausted or a page alert began to fire.",
        labels=["slo", "namespace"],
    )
    activated = CounterMetricFamily(
        "sla_freezes_activated",
        "Freezes decided, by policy.",
        labels=["namespace", "policy"],
    )
    resolved = CounterMetricFamily(
        "sla_freezes_resolved",
        "Freezes lifted, by policy.",
        labels=["namespace", "policy"],
    )
    families = {"violated": violations, "freeze": activated, "lift": resolved}
    for count in decisions:
        families[count.outcome].add_metric(
            [count.subject, _namespace(count.subject)]
            if count.outcome == "violated"
            else [_namespace(count.subject), count.subject],
            count.total,
        )
    yield from (violations, activated, resolved)


def work_metrics(counters: Iterable[CounterValue]) -> Iterator[Metric]:
    """The stored work counters as families; rows of other metrics are left out,
    so only names defined in :mod:`sla.runtime.metrics` are ever exposed."""
    by_sample: dict[str, list[CounterValue]] = {}
    for row in counters:
        by_sample.setdefault(row.metric, []).append(row)
    for counter in STORED_COUNTERS:
        yield _counter_family(counter, by_sample.get(counter.sample, []))
    for histogram in STORED_HISTOGRAMS:
        yield _histogram_family(histogram, by_sample)


def _counter_family(counter: StoredCounter, rows: list[CounterValue]) -> Metric:
    family = CounterMetricFamily(counter.name, counter.help, labels=counter.labels)
    values = {_label_values(counter.labels, row.labels): row.value for row in rows}
    for zero in counter.zero:
        values.setdefault(zero, 0.0)
    for labels, value in sorted(values.items()):
        family.add_metric(list(labels), value)
    return family


def _label_values(names: tuple[str, ...], labels: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(str(labels.get(name, "")) for name in names)


def _histogram_family(
    histogram: StoredHistogram, by_sample: Mapping[str, list[CounterValue]]
) -> Metric:
    family = HistogramMetricFamily(histogram.name, histogram.help)
    stored = {
        row.labels.get("le"): row.value
        for row in by_sample.get(f"{histogram.name}_bucket", [])
    }
    total = sum(row.value for row in by_sample.get(f"{histogram.name}_sum", []))
    bounds = [le(bound) for bound in histogram.buckets] + ["+Inf"]
    # Every bucket is shown, at 0 until an observation falls in it, as
    # prometheus_client does for a histogram of its own.
    family.add_metric(
        [],
        buckets=[(bound, stored.get(bound, 0.0)) for bound in bounds],
        sum_value=total,
    )
    return family


class StateCollector(Collector):
    """A :class:`SystemState` as metric families; made anew for every scrape."""

    def __init__(self, state: SystemState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        yield from budget_metrics(self._state.slos)
        yield from catalogue_metrics(self._state)
        yield from freeze_metrics(self._state.freezes)
        yield from decision_metrics(self._state.decisions)
        yield from work_metrics(self._state.counters)


def state_exposition(state: SystemState) -> bytes:
    """The state in Prometheus' text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state))
    return generate_latest(registry)
