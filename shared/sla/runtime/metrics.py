"""The system's work metrics: what the functions count as they work.

Two kinds, by where they live:

- Stored (:data:`CALCULATIONS`, :data:`CALCULATION_DURATION`,
  :data:`PROMETHEUS_QUERIES`, :data:`EVENTS_PUBLISHED`, :data:`FREEZE_DURATION`):
  a function scales to zero and is never scraped, so these are added to the store's
  ``work_counters`` (:mod:`sla.clients.store.counters`) in the transaction of the
  work they count, and budget-api exposes them for the whole system
  (:mod:`sla.runtime.state_metrics`). Each definition here only builds
  :class:`~sla.clients.store.Increment` values; a histogram is kept as its
  cumulative buckets and sum, which add like counters.
- In process (:data:`API_REQUESTS`, :data:`API_REQUEST_DURATION`): budget-api's own
  requests, in :data:`REGISTRY`. budget-api is the process that is scraped and it
  runs with min-scale 1, so its memory is where its requests are counted.

The state of the system (budgets, statuses, burn rates, freezes, counts of SLOs and
policies, violations and freeze transitions) is read from the store at scrape time.

Label values are fixed words (``ok``/``error``), event types of the catalogue and
route templates: never counts, SLO names or free text, so every series set is
bounded. Names and labels follow the contract in docs/deploy.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from sla.clients.store import Increment

Outcome = Literal["ok", "error"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("ok", "error")

REGISTRY: Final = CollectorRegistry(auto_describe=True)
"""The in-process metrics (budget-api's requests); prometheus_client's default
registry is left alone so a library that registers there cannot collide with these
names."""

CALCULATION_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 120, 300)
"""Seconds: a tick must fit in its minute (the SLACalculationsSlow alert fires at a
p99 above 30 s), and sli-calculator's request timeout is 300 s."""

FREEZE_BUCKETS: Final = (
    300,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    30 * 86400,
)
"""Seconds: from the shortest sensible hysteresis (minutes) to a month-long freeze."""

REQUEST_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Seconds: budget-api answers from Redis in milliseconds; its timeout is 30 s."""


@dataclass(frozen=True)
class StoredCounter:
    """A counter kept in the store; ``zero`` lists label values exposed at 0 before
    anything is counted, so ``absent()`` and ``rate()`` see the series at once."""

    name: str
    help: str
    labels: tuple[str, ...]
    zero: tuple[tuple[str, ...], ...] = ()

    @property
    def sample(self) -> str:
        return f"{self.name}_total"

    def add(self, amount: float = 1.0, **labels: str) -> Increment:
        """``amount`` more for the series of ``labels`` (exactly this metric's)."""
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, not {labels}")
        return Increment(self.sample, amount, labels)


@dataclass(frozen=True)
class StoredHistogram:
    """A histogram kept in the store as cumulative bucket counters and a sum (its
    count is the ``+Inf`` bucket)."""

    name: str
    help: str
    buckets: tuple[float, ...]

    def observe(self, value: float) -> list[Increment]:
        """The increments one observation of ``value`` makes."""
        bounds = [bound for bound in self.buckets if value <= bound]
        return [
            *(Increment(f"{self.name}_bucket", 1, {"le": le(b)}) for b in bounds),
            Increment(f"{self.name}_bucket", 1, {"le": "+Inf"}),
            Increment(f"{self.name}_sum", value),
        ]


def le(bound: float) -> str:
    """A bucket bound as Prometheus' client writes it (``0.5``, ``300.0``)."""
    return str(float(bound))


CALCULATIONS: Final = StoredCounter(
    "sla_calculations",
    "SLO budget calculations by outcome (ok or error).",
    ("outcome",),
    zero=(("ok",), ("error",)),
)
CALCULATION_DURATION: Final = StoredHistogram(
    "sla_calculation_duration_seconds",
    "Time to evaluate one batch of SLOs (a tick, a shard or an alert's), in seconds.",
    CALCULATION_BUCKETS,
)
PROMETHEUS_QUERIES: Final = StoredCounter(
    "sla_prometheus_queries",
    "Queries sent to Prometheus by outcome (ok or error).",
    ("outcome",),
    zero=(("ok",), ("error",)),
)
EVENTS_PUBLISHED: Final = StoredCounter(
    "sla_events_published",
    "CloudEvents emitted (replied or posted to the broker) by type, and failed "
    "posts (outcome error).",
    ("type", "outcome"),
)
# Observed by the policy evaluator in the transaction of the lift's decision.
FREEZE_DURATION: Final = StoredHistogram(
    "sla_freeze_duration_seconds",
    "How long a freeze held, from its decision to the lift's, observed when it is "
    "released, in seconds.",
    FREEZE_BUCKETS,
)
STORED_COUNTERS: Final = (CALCULATIONS, PROMETHEUS_QUERIES, EVENTS_PUBLISHED)
STORED_HISTOGRAMS: Final = (CALCULATION_DURATION, FREEZE_DURATION)

API_REQUESTS: Final = Counter(
    "sla_api_requests",
    "budget-api requests by route template, method and status code.",
    ["route", "method", "code"],
    registry=REGISTRY,
)
API_REQUEST_DURATION: Final = Histogram(
    "sla_api_request_duration_seconds",
    "budget-api request duration by route template, in seconds.",
    ["route"],
    buckets=REQUEST_BUCKETS,
    registry=REGISTRY,
)


def outcome_of(ok: bool) -> Outcome:
    """``ok`` or ``error``: the only values of the ``outcome`` label."""
    return "ok" if ok else "error"


def published(
    event_types: Iterable[str], *, outcome: Outcome = "ok"
) -> list[Increment]:
    """One more ``sla_events_published_total`` for each event, by its type."""
    counted: dict[str, int] = {}
    for event_type in event_types:
        counted[event_type] = counted.get(event_type, 0) + 1
    return [
        EVENTS_PUBLISHED.add(count, type=event_type, outcome=outcome)
        for event_type, count in sorted(counted.items())
    ]


def calculations(ok: int, error: int) -> list[Increment]:
    """``ok`` and ``error`` more calculations."""
    return [
        CALCULATIONS.add(ok, outcome="ok"),
        CALCULATIONS.add(error, outcome="error"),
    ]


def prometheus_queries(ok: int, error: int) -> list[Increment]:
    """``ok`` answered and ``error`` failed requests to Prometheus."""
    return [
        PROMETHEUS_QUERIES.add(ok, outcome="ok"),
        PROMETHEUS_QUERIES.add(error, outcome="error"),
    ]


def exposition(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The registry in Prometheus' text exposition format."""
    return generate_latest(registry)
