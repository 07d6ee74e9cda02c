"""How many expressions to put in one Prometheus request.

Writes a day of request counters for a few hundred services, starts Prometheus
over them with the test harness, and evaluates the same 1,000 expressions with
several batch sizes, 8 requests in flight. Run from the repository root:

    .venv/bin/python -m bench.bench_prometheus_batching

The defaults of ``PrometheusClient.instant_many`` come from this measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from tests.support.prometheus import PrometheusFactory, Series, Timeline, requests

from sla.clients.prometheus import PrometheusClient

HISTORY_START = datetime(2025, 1, 6, tzinfo=UTC)
WINDOWS = ("5m", "1h")
UNLIMITED_BYTES = 100 * 1024 * 1024


def history(*, services: int, hours: int) -> list[list[Series]]:
    timeline = Timeline(start=HISTORY_START, end=HISTORY_START + timedelta(hours=hours))
    return [
        requests(
            timeline=timeline,
            per_step=10 + index % 50,
            error_ratio=Fraction(1, 100),
            labels={"service": f"service-{index:04d}"},
        )
        for index in range(services)
    ]


def expressions(*, services: int) -> dict[str, str]:
    """Good and total counts per service and window: four per service."""
    exprs: dict[str, str] = {}
    for index in range(services):
        service = f'service="service-{index:04d}"'
        for window in WINDOWS:
            total = f"http_requests_total{{{service}}}"
            bad = f'http_requests_total{{{service}, code="500"}}'
            exprs[f"{index}/{window}/total"] = f"sum(increase({total}[{window}]))"
            exprs[f"{index}/{window}/bad"] = f"sum(increase({bad}[{window}]))"
    return exprs


async def measure(
    url: str, exprs: dict[str, str], *, per_query: int, at: datetime, repeat: int
) -> tuple[float, int, int]:
    """Median seconds, requests and samples of one full evaluation."""
    durations: list[float] = []
    for _ in range(repeat):
        async with PrometheusClient(url, concurrency=8) as client:
            started = time.perf_counter()
            await client.instant_many(
                exprs,
                time=at,
                max_per_query=per_query,
                # Only the count limits a batch here.
                max_query_bytes=UNLIMITED_BYTES,
            )
            durations.append(time.perf_counter() - started)
            requests_made, samples = client.stats.requests, client.stats.samples
    return statistics.median(durations), requests_made, samples


async def run(url: str, *, services: int, hours: int, repeat: int) -> None:
    exprs = expressions(services=services)
    at = HISTORY_START + timedelta(hours=hours)
    print(f"{len(exprs)} expressions, 8 in flight, median of {repeat} runs")
    print(f"{'per request':>12} {'requests':>9} {'seconds':>8} {'samples':>9}")
    for per_query in (1, 10, 25, 50, 100, 125, 250):
        seconds, requests_made, samples = await measure(
            url, exprs, per_query=per_query, at=at, repeat=repeat
        )
        print(f"{per_query:>12} {requests_made:>9} {seconds:>8.3f} {samples:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=250)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as work_dir:
        factory = PrometheusFactory(Path(work_dir))
        try:
            url = factory(*history(services=arguments.services, hours=arguments.hours))
            asyncio.run(
                run(
                    url,
                    services=arguments.services,
                    hours=arguments.hours,
                    repeat=arguments.repeat,
                )
            )
        finally:
            factory.stop_all()


if __name__ == "__main__":
    main()
