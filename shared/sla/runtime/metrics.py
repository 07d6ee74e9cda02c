"""The system's work metrics: counters and histograms a function adds to as it works.

Every function imports these objects and counts what it does; they live in one
registry, :data:`REGISTRY`, which a function exposes with :func:`exposition`.
The state of the system (budgets, statuses, burn rates, freezes, counts of SLOs and
policies, violations and freeze transitions) is not here: it is read from the store
when budget-api is scraped (:mod:`sla.runtime.state_metrics`), so it stays visible
while the functions are scaled to zero.

Label values are fixed words (``ok``/``error``), event types of the catalogue and
route templates: never counts, SLO names or free text, so every series set is
bounded. Names and labels follow the contract in docs/deploy.md.
"""

from __future__ import annotations

from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

Outcome = Literal["ok", "error"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("ok", "error")

REGISTRY: Final = CollectorRegistry(auto_describe=True)
"""The work metrics of this process; the default registry of prometheus_client is
left alone so a library that registers there cannot collide with these names."""

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

CALCULATIONS: Final = Counter(
    "sla_calculations",
    "SLO budget calculations by outcome (ok or error).",
    ["outcome"],
    registry=REGISTRY,
)
CALCULATION_DURATION: Final = Histogram(
    "sla_calculation_duration_seconds",
    "Time to calculate one SLO's budget, in seconds.",
    buckets=CALCULATION_BUCKETS,
    registry=REGISTRY,
)
PROMETHEUS_QUERIES: Final = Counter(
    "sla_prometheus_queries",
    "Queries sent to Prometheus by outcome (ok or error).",
    ["outcome"],
    registry=REGISTRY,
)
EVENTS_PUBLISHED: Final = Counter(
    "sla_events_published",
    "CloudEvents posted or replied, by event type and outcome (ok or error).",
    ["type", "outcome"],
    registry=REGISTRY,
)
FREEZE_DURATION: Final = Histogram(
    "sla_freeze_duration_seconds",
    "How long a freeze held, observed when it is lifted, in seconds.",
    buckets=FREEZE_BUCKETS,
    registry=REGISTRY,
)
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


def initialise_outcomes() -> None:
    """Create the ``outcome`` series at zero, so a rate over them starts from the
    first scrape and ``absent()`` reads the metric as present."""
    for outcome in OUTCOMES:
        CALCULATIONS.labels(outcome=outcome)
        PROMETHEUS_QUERIES.labels(outcome=outcome)


def exposition(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The registry in Prometheus' text exposition format."""
    return generate_latest(registry)
