"""Work metrics survive the functions that counted them: sli-calculator and
policy-evaluator count into the store, budget-api's /metrics shows the totals.

History: two days of requests on a 60 s grid, 60 a minute; job ``api`` fails 1 %,
job ``bad`` 5 %. Both SLOs have a 1-day window and an objective of 98 % (B = 0.02):

- ``shop/api``: e = 0.01, remaining = 1 − 0.01 / 0.02 = 0.5: ``healthy``;
- ``shop/bad``: e = 0.05, remaining = 1 − 0.05 / 0.02 = −1.5: ``exhausted``.

The policy ``shop/release-gate`` selects ``bad`` and freezes below 10 %, so ``bad``'s
snapshot makes a freeze and a violation; ``api``'s makes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sla.clients.store import Store
from tests.support.budget_api import (
    TOKEN,
    open_api,
    policy_object,
    seed_objects,
)
from tests.support.functions import (
    ReceivedEvent,
    RecordingSink,
    binary_event,
    client_for,
    function_env,
    load_function,
)
from tests.support.prometheus import PrometheusFactory, Timeline, requests

pytestmark = pytest.mark.prometheus

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
END = DAY0 + timedelta(days=2)
TICK_SOURCE = "/apis/v1/namespaces/sla-system/pingsources/sla-tick"
ROWS = [{"severity": "page", "longWindow": "1h", "shortWindow": "5m", "factor": 10}]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def slo_object(job: str) -> dict[str, Any]:
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": "SLODefinition",
        "metadata": {"name": job, "namespace": "shop", "generation": 1},
        "spec": {
            "service": "api",
            "objective": 98,
            "window": "1d",
            "indicator": {
                "ratio": {
                    "bad": {"metric": f'http_requests_total{{job="{job}",code="500"}}'},
                    "total": {"metric": f'http_requests_total{{job="{job}"}}'},
                }
            },
            "alerting": {"rows": ROWS},
        },
    }


@pytest.fixture
def prometheus_url(prometheus_factory: PrometheusFactory) -> str:
    timeline = Timeline(start=DAY0, end=END)
    series: list[Any] = []
    for job, ratio in (("api", Fraction(1, 100)), ("bad", Fraction(1, 20))):
        series += requests(
            timeline=timeline, per_step=60, error_ratio=ratio, labels={"job": job}
        )
    return prometheus_factory(series)


@pytest.fixture
async def functions(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    prometheus_url: str,
    sink: RecordingSink,
) -> AsyncIterator[dict[str, Any]]:
    """sli-calculator and policy-evaluator on the test's schema and sink."""
    function_env(
        monkeypatch,
        database_url=database_url,
        schema=schema_name,
        SLA_PROMETHEUS_URL=prometheus_url,
        K_SINK=sink.url,
    )
    loaded = {
        name: load_function(name) for name in ("sli-calculator", "policy-evaluator")
    }
    yield loaded
    for module, _ in loaded.values():
        await module.function.aclose()


async def post(app: Any, event: tuple[dict[str, str], bytes]) -> Any:
    headers, body = event
    async with client_for(app) as client:
        return await client.post("/", headers=headers, content=body)


def forwarded(event: ReceivedEvent) -> tuple[dict[str, str], bytes]:
    """A posted event as the broker delivers it on: binary mode, same headers."""
    headers = {k: v for k, v in event.headers.items() if k.startswith("ce-")}
    headers["content-type"] = event.headers["content-type"]
    return headers, event.body


async def scrape(
    monkeypatch: pytest.MonkeyPatch, database_url: str, schema: str
) -> Samples:
    async with open_api(
        monkeypatch, database_url=database_url, schema=schema, SLA_API_TOKEN=TOKEN
    ) as (api, _):
        response = await api.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def published(samples: Samples, event_type: str, outcome: str = "ok") -> float:
    return value(
        samples, "sla_events_published_total", type=event_type, outcome=outcome
    )


async def test_budget_api_shows_the_work_of_the_other_functions(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    sink: RecordingSink,
    functions: dict[str, Any],
) -> None:
    await seed_objects(
        store,
        slo_object("api"),
        slo_object("bad"),
        policy_object("shop", "release-gate", ["bad"]),
    )
    calculator_module, calculator = functions["sli-calculator"]
    _, evaluator = functions["policy-evaluator"]
    tick = binary_event(
        "dev.knative.sources.ping",
        source=TICK_SOURCE,
        id="tick-1",
        time="2026-01-03T00:00:42Z",
    )

    assert (await post(calculator, tick)).status_code == 202
    budgets = sink.events()
    for budget in budgets:
        assert (await post(evaluator, forwarded(budget))).status_code in (200, 202)
    # Redelivered: answered from the record, counted nothing again.
    assert (await post(calculator, tick)).status_code == 202
    for budget in budgets:
        await post(evaluator, forwarded(budget))

    samples = await scrape(monkeypatch, database_url, schema_name)

    # Two SLOs evaluated once: two calculations, one batch observed.
    assert value(samples, "sla_calculations_total", outcome="ok") == 2
    assert value(samples, "sla_calculations_total", outcome="error") == 0
    assert value(samples, "sla_calculation_duration_seconds_count") == 1
    assert value(samples, "sla_calculation_duration_seconds_bucket", le="+Inf") == 1
    # Every answered query, as the function's own Prometheus client counted them.
    clients = calculator_module.function.deps.datasources.clients.values()
    answered = sum(client.stats.queries for client in clients)
    assert answered > 0
    assert value(samples, "sla_prometheus_queries_total", outcome="ok") == answered
    assert value(samples, "sla_prometheus_queries_total", outcome="error") == 0
    # Two budgets; bad's makes one freeze and one violation; api's nothing.
    assert published(samples, "dev.sla.budget.calculated") == 2
    assert published(samples, "dev.sla.freeze.requested") == 1
    assert published(samples, "dev.sla.slo.violated") == 1
