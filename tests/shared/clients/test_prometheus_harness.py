"""The Prometheus harness writes the history it is given, and Prometheus reads it so.

These tests also pin the facts about Prometheus 2.42 the design builds on: on a
60 s grid, evaluated on the grid, ``increase()`` is exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from sla.clients.prometheus import PrometheusClient
from tests.support.prometheus import (
    PrometheusFactory,
    Series,
    Timeline,
    bool_gauge,
    counter,
    histogram,
    openmetrics,
    outage,
    requests,
)

pytestmark = pytest.mark.prometheus

HOUR_0 = datetime(2025, 1, 6, tzinfo=UTC)
TIMELINE = Timeline(start=HOUR_0, end=HOUR_0 + timedelta(hours=3))
MINUTE = 60


def uneven(timestamp: int) -> int:
    """Events per minute that vary: 0, 1, … 6, 0, 1, … by minute of the hour."""
    return (timestamp // MINUTE) % 7


def history() -> list[Series | list[Series]]:
    return [
        counter("uneven_total", timeline=TIMELINE, per_step=uneven),
        counter(
            "restarted_total",
            timeline=TIMELINE,
            per_step=10,
            resets=[HOUR_0 + timedelta(minutes=90, seconds=30)],
        ),
        counter(
            "gappy_total",
            timeline=TIMELINE,
            per_step=10,
            gaps=[(HOUR_0 + timedelta(minutes=60), HOUR_0 + timedelta(minutes=70))],
        ),
        requests(
            timeline=TIMELINE,
            per_step=60,
            error_ratio=Fraction(1, 100),
            phases=[
                outage(
                    HOUR_0 + timedelta(hours=2),
                    HOUR_0 + timedelta(hours=2, minutes=10),
                    error_ratio=Fraction(1, 2),
                )
            ],
        ),
        histogram(
            "latency_seconds",
            timeline=TIMELINE,
            per_step=100,
            buckets=[("0.1", Fraction(1, 2)), ("1.0", Fraction(9, 10))],
        ),
        bool_gauge(
            "probe_success",
            timeline=TIMELINE,
            down=[(HOUR_0 + timedelta(hours=1), HOUR_0 + timedelta(minutes=75))],
        ),
    ]


@pytest.fixture(scope="module")
def prometheus_url(prometheus_factory: PrometheusFactory) -> str:
    return prometheus_factory(*history())


@pytest.fixture
async def client(prometheus_url: str) -> AsyncIterator[PrometheusClient]:
    async with PrometheusClient(prometheus_url) as prometheus:
        yield prometheus


async def scalar(client: PrometheusClient, expr: str, at: datetime) -> float:
    samples = await client.instant(expr, time=at)
    assert len(samples) == 1, samples
    return samples[0].value


def test_openmetrics_groups_families_and_ends_with_eof() -> None:
    short = Timeline(start=HOUR_0, end=HOUR_0 + timedelta(minutes=1))
    text = openmetrics(
        [requests(timeline=short, per_step=3, error_ratio=Fraction(1, 3))]
    )

    # Minute 1: 3 requests, floor(3 × 1/3) = 1 of them failed.
    assert text.splitlines() == [
        "# TYPE http_requests counter",
        f'http_requests_total{{code="200"}} 0 {int(HOUR_0.timestamp())}',
        f'http_requests_total{{code="200"}} 2 {int(HOUR_0.timestamp()) + 60}',
        f'http_requests_total{{code="500"}} 0 {int(HOUR_0.timestamp())}',
        f'http_requests_total{{code="500"}} 1 {int(HOUR_0.timestamp()) + 60}',
        "# EOF",
    ]


async def test_increase_is_exact_on_the_grid(client: PrometheusClient) -> None:
    """A 1h range evaluated on the 60 s grid holds both end samples: exact."""
    at = HOUR_0 + timedelta(hours=1, minutes=30)
    end = int(at.timestamp())
    # The events counted in the samples of (at - 1h, at].
    expected = sum(uneven(t) for t in range(end - 3600 + MINUTE, end + 1, MINUTE))

    measured = await scalar(client, "increase(uneven_total[1h])", at)

    assert measured == expected


async def test_increase_off_the_grid_is_extrapolated(client: PrometheusClient) -> None:
    """Half a step off the grid, the same window's count is no longer exact."""
    at = HOUR_0 + timedelta(hours=1, minutes=30, seconds=30)
    end = int(at.timestamp())
    events_inside = sum(uneven(t) for t in range(end - 3600 + 30, end, MINUTE))

    measured = await scalar(client, "increase(uneven_total[1h])", at)

    assert measured != events_inside
    assert measured != round(measured)


async def test_counter_reset_is_followed_by_increase(client: PrometheusClient) -> None:
    at = HOUR_0 + timedelta(hours=2)

    # 10 events a minute; the reset at 1:30:30 loses none of them.
    assert await scalar(client, "increase(restarted_total[1h])", at) == 60 * 10
    assert await scalar(client, "resets(restarted_total[1h])", at) == 1


async def test_gap_has_no_samples_and_events_resume(client: PrometheusClient) -> None:
    after_gap = HOUR_0 + timedelta(hours=2, minutes=10)

    # Samples at 1:00 … 1:09 are missing: 61 - 10 remain in [1:00, 2:00].
    at = HOUR_0 + timedelta(hours=2)
    assert await scalar(client, "count_over_time(gappy_total[1h])", at) == 61 - 10
    # With samples at both edges of [1:10, 2:10] every event of the hour counts.
    assert await scalar(client, "increase(gappy_total[1h])", after_gap) == 60 * 10


async def test_window_starting_in_a_gap_loses_events(client: PrometheusClient) -> None:
    """Prometheus extrapolates at most half a step toward a window's start."""
    at = HOUR_0 + timedelta(hours=2)

    # Samples cover 1:10 … 2:00: 50 steps of 10 events, 3000 s, stretched by 30 s.
    expected = 50 * 10 * (3000 + 30) / 3000

    assert await scalar(client, "increase(gappy_total[1h])", at) == expected


async def test_requests_have_exact_errors(client: PrometheusClient) -> None:
    first_hour = HOUR_0 + timedelta(hours=1)
    with_outage = HOUR_0 + timedelta(hours=2, minutes=10)

    total = "sum(increase(http_requests_total[1h]))"
    bad = 'sum(increase(http_requests_total{code="500"}[1h]))'
    assert await scalar(client, total, first_hour) == 60 * 60
    assert await scalar(client, bad, first_hour) == 60 * 60 / 100
    # 2:10 looks back to 1:10: 50 minutes at 1 %, 10 at 50 %.
    assert await scalar(client, bad, with_outage) == 50 * 60 / 100 + 10 * 60 / 2


async def test_histogram_bounds_are_written_as_given(client: PrometheusClient) -> None:
    at = HOUR_0 + timedelta(hours=1)

    bounds = await client.instant("latency_seconds_bucket", time=at)

    assert sorted(sample.labels["le"] for sample in bounds) == ["+Inf", "0.1", "1.0"]
    under_one = 'increase(latency_seconds_bucket{le="1.0"}[1h])'
    assert await scalar(client, under_one, at) == 60 * 100 * 9 / 10


async def test_bool_gauge_is_down_for_its_period(client: PrometheusClient) -> None:
    at = HOUR_0 + timedelta(hours=2)

    # Samples 1:00 … 1:14 are 0: 15 of the 61 samples in [1:00, 2:00].
    up = await scalar(client, "sum_over_time(probe_success[1h])", at)

    assert up == 61 - 15
