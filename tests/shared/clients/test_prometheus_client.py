"""The Prometheus client against a real Prometheus holding history written here."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import httpx
import pytest

from sla.clients.prometheus import Deadline, PrometheusClient, QueryRejected
from sla.clients.promql import label_matcher
from sla.errors import DatasourceError, DatasourceUnavailable
from tests.support.prometheus import PrometheusFactory, Series, Timeline, counter
from tests.support.prometheus import requests as request_counters

pytestmark = pytest.mark.prometheus

HOUR_0 = datetime(2025, 1, 6, tzinfo=UTC)
TIMELINE = Timeline(start=HOUR_0, end=HOUR_0 + timedelta(hours=3))
AWKWARD_PATH = 'a"b\\c\nd'
CHECKOUT = 'http_requests_total{service="checkout"}'
CHECKOUT_ERRORS = 'http_requests_total{service="checkout", code="500"}'


def history() -> list[Series | list[Series]]:
    return [
        request_counters(
            timeline=TIMELINE,
            per_step=60,
            error_ratio=Fraction(1, 100),
            labels={"service": "checkout"},
        ),
        counter(
            "weird_total", timeline=TIMELINE, per_step=1, labels={"path": AWKWARD_PATH}
        ),
    ]


@pytest.fixture(scope="module")
def prometheus_url(prometheus_factory: PrometheusFactory) -> str:
    return prometheus_factory(*history())


@pytest.fixture
async def client(prometheus_url: str) -> AsyncIterator[PrometheusClient]:
    async with PrometheusClient(prometheus_url) as prometheus:
        yield prometheus


async def test_increase_over_an_hour_is_exact(client: PrometheusClient) -> None:
    at = HOUR_0 + timedelta(hours=2)

    samples = await client.instant(f"sum by (code) (increase({CHECKOUT}[1h]))", time=at)

    by_code = {sample.labels["code"]: sample.value for sample in samples}
    # 60 requests a minute for 60 minutes, 1 % of them errors.
    assert by_code == {"200": 60 * 60 - 36, "500": 60 * 60 / 100}
    assert {sample.timestamp for sample in samples} == {at}


async def test_range_query_returns_each_step(client: PrometheusClient) -> None:
    start, end = HOUR_0 + timedelta(hours=1), HOUR_0 + timedelta(hours=2)

    (series,) = await client.range(
        f"sum(increase({CHECKOUT_ERRORS}[1h]))",
        start=start,
        end=end,
        step=timedelta(minutes=30),
    )

    assert series.labels == {}
    assert [point.timestamp for point in series.points] == [
        start,
        start + timedelta(minutes=30),
        end,
    ]
    assert [point.value for point in series.points] == [36.0, 36.0, 36.0]


async def test_non_finite_values_come_back_as_floats(client: PrometheusClient) -> None:
    at = HOUR_0 + timedelta(hours=1)

    (nan,) = await client.instant("vector(0) / 0", time=at)
    (plus,) = await client.instant("vector(1) / 0", time=at)
    (minus,) = await client.instant("vector(-1) / 0", time=at)
    (scalar,) = await client.instant("0 / 0", time=at)

    assert math.isnan(nan.value)
    assert plus.value == math.inf
    assert minus.value == -math.inf
    assert scalar.labels == {}
    assert math.isnan(scalar.value)


async def test_a_time_without_zone_is_refused(client: PrometheusClient) -> None:
    with pytest.raises(ValueError, match="time zone"):
        await client.instant("vector(1)", time=datetime(2025, 1, 6))

    assert client.stats.requests == 0


async def test_bad_syntax_is_rejected_once(client: PrometheusClient) -> None:
    expr = f"sum(rate({CHECKOUT}[5m])"

    with pytest.raises(QueryRejected) as caught:
        await client.instant(expr, time=HOUR_0)

    assert caught.value.status_code == 400
    assert caught.value.error_type == "bad_data"
    assert "parse error" in caught.value.message
    assert caught.value.query == expr
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
    assert client.stats.requests == 1


async def test_failed_evaluation_is_rejected(client: PrometheusClient) -> None:
    """Matching two series per service one-to-one fails while evaluating: 422."""
    expr = f"{CHECKOUT} + on (service) {CHECKOUT}"

    with pytest.raises(QueryRejected) as caught:
        await client.instant(expr, time=HOUR_0 + timedelta(hours=1))

    assert caught.value.status_code == 422
    assert caught.value.error_type == "execution"
    assert client.stats.requests == 1


async def test_query_longer_than_a_url_allows_is_posted(
    client: PrometheusClient,
) -> None:
    """Prometheus refuses request headers over 1 MiB (Go's default); a body is fine."""
    at = HOUR_0 + timedelta(hours=1)
    padding = "\n# " + "x" * (2 * 1024 * 1024)

    samples = await client.instant(
        f"sum(increase({CHECKOUT_ERRORS}[1h])){padding}\n", time=at
    )

    assert [sample.value for sample in samples] == [36.0]


FORM_CHARACTERS = "a;b&c=d+e%f#g h/i?j@k!l*m(n)o,p'q é\\"
"""Each character the form encoding must escape or may leave, and a non-ASCII one."""


@pytest.mark.parametrize("padding", ["", "\n# " + "x" * 5000])
async def test_the_form_carries_every_character_as_written(
    client: PrometheusClient, padding: str
) -> None:
    # Short queries go in the URL, long ones in the body; Prometheus must read the
    # same text both ways, including a ';' its form parser would otherwise refuse.
    at = HOUR_0 + timedelta(hours=1)
    literal = '"' + FORM_CHARACTERS.replace("\\", "\\\\") + '"'

    samples = await client.instant(
        f'label_replace(vector(1), "text", {literal}, "", ""){padding}\n', time=at
    )

    assert [sample.labels["text"] for sample in samples] == [FORM_CHARACTERS]


async def test_stats_count_requests_and_samples(client: PrometheusClient) -> None:
    at = HOUR_0 + timedelta(hours=1)

    await client.instant(f"increase({CHECKOUT}[1h])", time=at)
    await client.instant("vector(1)", time=at)

    # Two series, each with a sample at every minute of [0:00, 1:00], both ends in.
    assert client.stats.requests == 2
    assert client.stats.queries == 2
    assert client.stats.samples == 2 * 61


async def test_escaped_value_cannot_change_the_query(client: PrometheusClient) -> None:
    at = HOUR_0 + timedelta(hours=1)
    hostile = '"} or vector(1) #'

    pasted = await client.instant(f'weird_total{{path="{hostile}"}}', time=at)
    escaped = await client.instant(
        f"weird_total{{{label_matcher('path', hostile)}}}", time=at
    )

    # Pasted as it is, the value adds a term of its own; escaped, it matches nothing.
    assert [sample.value for sample in pasted] == [1.0]
    assert escaped == []


async def test_escaped_value_matches_itself(client: PrometheusClient) -> None:
    at = HOUR_0 + timedelta(hours=1)

    (sample,) = await client.instant(
        f"weird_total{{{label_matcher('path', AWKWARD_PATH)}}}", time=at
    )

    assert sample.labels["path"] == AWKWARD_PATH
    assert sample.value == 60


async def test_passed_deadline_sends_nothing(client: PrometheusClient) -> None:
    with pytest.raises(DatasourceUnavailable, match="deadline"):
        await client.instant("vector(1)", time=HOUR_0, deadline=Deadline.after(-1))

    assert client.stats.requests == 0


async def test_matrix_answer_to_instant_query_is_an_error(
    client: PrometheusClient,
) -> None:
    with pytest.raises(DatasourceError, match="expected a vector"):
        await client.instant(f"{CHECKOUT}[5m]", time=HOUR_0 + timedelta(hours=1))
