"""Many expressions in few requests: the same answers as asking one by one."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from sla.clients.prometheus import (
    PrometheusClient,
    QueryRejected,
    plan_batches,
    tagged_union,
)
from tests.support.prometheus import PrometheusFactory, Series, Timeline, counter
from tests.support.prometheus import requests as request_counters

pytestmark = pytest.mark.prometheus

HOUR_0 = datetime(2025, 1, 6, tzinfo=UTC)
TIMELINE = Timeline(start=HOUR_0, end=HOUR_0 + timedelta(hours=3))
AT = HOUR_0 + timedelta(hours=2, minutes=30)
SERVICES = {"checkout": 60, "search": 30, "login": 6}
WINDOWS = ("5m", "30m", "1h", "2h")


def history() -> list[Series | list[Series]]:
    traffic: list[Series | list[Series]] = [
        request_counters(
            timeline=TIMELINE,
            per_step=per_minute,
            error_ratio=Fraction(1, 100),
            labels={"service": service},
        )
        for service, per_minute in SERVICES.items()
    ]
    traffic.append(counter("jobs_total", timeline=TIMELINE, per_step=0))
    return traffic


@pytest.fixture(scope="module")
def prometheus_url(prometheus_factory: PrometheusFactory) -> str:
    return prometheus_factory(*history())


@pytest.fixture
async def client(prometheus_url: str) -> AsyncIterator[PrometheusClient]:
    async with PrometheusClient(prometheus_url) as prometheus:
        yield prometheus


def counts() -> dict[str, str]:
    """Bad and total counts per service and window, plus an absent service."""
    exprs: dict[str, str] = {}
    for service in [*SERVICES, "absent"]:
        for window in WINDOWS:
            selector = f'http_requests_total{{service="{service}"}}'
            exprs[f"{service}/{window}/total"] = f"sum(increase({selector}[{window}]))"
            bad = f'http_requests_total{{service="{service}", code="500"}}'
            exprs[f"{service}/{window}/bad"] = f"sum(increase({bad}[{window}]))"
    return exprs


async def test_batches_answer_as_single_queries_do(client: PrometheusClient) -> None:
    exprs = counts()

    batched = await client.instant_many(exprs, time=AT, max_per_query=7)
    batch_requests = client.stats.requests
    single = {tag: await client.instant(expr, time=AT) for tag, expr in exprs.items()}

    assert batch_requests == math.ceil(len(exprs) / 7)
    assert set(batched) == set(exprs)
    for tag, samples in single.items():
        assert batched[tag] == samples, tag


async def test_batched_counts_are_exact(client: PrometheusClient) -> None:
    batched = await client.instant_many(counts(), time=AT)

    # checkout: 60 a minute, 1 % errors, so 36 errors in every hour on the grid.
    assert [sample.value for sample in batched["checkout/1h/total"]] == [3600.0]
    assert [sample.value for sample in batched["checkout/1h/bad"]] == [36.0]
    assert [sample.value for sample in batched["search/2h/total"]] == [30 * 120]
    assert client.stats.requests == 1


async def test_absent_idle_and_several_are_told_apart(client: PrometheusClient) -> None:
    exprs = {
        "absent": 'sum(increase(http_requests_total{service="absent"}[1h]))',
        "idle": "sum(increase(jobs_total[1h]))",
        "several": 'increase(http_requests_total{service="checkout"}[1h])',
    }

    batched = await client.instant_many(exprs, time=AT)

    assert batched["absent"] == []
    assert [sample.value for sample in batched["idle"]] == [0.0]
    several = {sample.labels["code"]: sample.value for sample in batched["several"]}
    assert several == {"200": 3600 - 36, "500": 36}
    assert all("__sla_tag" not in s.labels for s in batched["several"])


async def test_rejected_expression_fails_only_its_tag(client: PrometheusClient) -> None:
    exprs = dict(list(counts().items())[:6])
    exprs["broken"] = "sum(increase(jobs_total[1h])"

    batched = await client.instant_many(exprs, time=AT)

    assert set(batched.rejected) == {"broken"}
    with pytest.raises(QueryRejected, match="parse error") as caught:
        batched["broken"]
    assert caught.value.query == exprs["broken"]
    assert [sample.value for sample in batched["checkout/5m/total"]] == [300.0]


async def test_comment_in_an_expression_stays_in_its_line(
    client: PrometheusClient,
) -> None:
    exprs = {
        "commented": "sum(increase(jobs_total[1h])) # idle on purpose",
        "after": 'sum(increase(http_requests_total{service="login"}[1h]))',
    }

    batched = await client.instant_many(exprs, time=AT)

    assert [sample.value for sample in batched["commented"]] == [0.0]
    assert [sample.value for sample in batched["after"]] == [6 * 60]


async def test_scalar_expression_works_alone_after_its_batch_fails(
    client: PrometheusClient,
) -> None:
    """label_replace needs a vector, so a scalar fails the batch, then runs alone."""
    exprs = {"scalar": "scalar(sum(increase(jobs_total[1h])))", "one": "vector(1)"}

    batched = await client.instant_many(exprs, time=AT)

    assert [sample.value for sample in batched["scalar"]] == [0.0]
    assert [sample.value for sample in batched["one"]] == [1.0]


def test_batches_stay_within_the_byte_limit() -> None:
    items = [(f"tag{index}", f"vector({index})" + " " * 90) for index in range(20)]

    batches = plan_batches(items, max_query_bytes=400, max_per_query=100)

    assert [tag for batch in batches for tag, _ in batch] == [tag for tag, _ in items]
    for batch in batches:
        assert len(tagged_union([expr for _, expr in batch]).encode()) <= 400


def test_batches_stay_within_the_count_limit() -> None:
    items = [(f"tag{index}", "vector(1)") for index in range(10)]

    batches = plan_batches(items, max_query_bytes=10_000, max_per_query=4)

    assert [len(batch) for batch in batches] == [4, 4, 2]


def test_an_expression_over_the_byte_limit_gets_a_batch_alone() -> None:
    items = [("short", "vector(1)"), ("long", "vector(2)" + " " * 500)]

    batches = plan_batches(items, max_query_bytes=100, max_per_query=10)

    assert [[tag for tag, _ in batch] for batch in batches] == [["short"], ["long"]]
