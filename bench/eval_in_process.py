"""The benchmark's in-process figures: the Evaluator driven the way ``sla eval`` does.

bench_eval runs this module in a process of its own, so that its peak memory is its
own and its imports are timed the way a command's are:

    python -m bench.eval_in_process SPECS --prometheus URL --database-url URL \\
        --at UNIX --spawned-at UNIX

It evaluates the SLOs at ``--at`` (cold: the database holds no chunk yet) and one
tick later (warm), each time as ``sla eval`` does (evaluate, then store the
snapshots), and prints one JSON object: the one-off phases (process start with
imports, loading the specs, opening the store) and per run the seconds of each
phase, how long Prometheus and the chunk store were busy during the evaluation,
the client's own request and sample counts, and the peak resident memory so far.
"""

# The imports of the library are timed, so they come after the clock is read.
# ruff: noqa: E402
from __future__ import annotations

import time

IMPORTS_STARTED = time.time()

import argparse
import asyncio
import json
import resource
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sla.clients.prometheus import (
    Deadline,
    InstantSample,
    PrometheusClient,
    RangeSeries,
)
from sla.clients.store import Store
from sla.clients.store.chunks import ChunkInventory, ChunkSpan, ChunkSum
from sla.clients.store.records import CountChunk
from sla.model.slo import SLODefinition
from sla.runtime.eval_command import options_from
from sla.runtime.settings import load_settings
from sla.services.evaluation import Evaluator
from sla.specs import load_paths

IMPORTED = time.time()

TICK: Final = timedelta(seconds=60)
"""The sla-tick PingSource fires every minute."""
KIB: Final = 1024


class BusyClock:
    """Wall time during which at least one call was in flight, and the calls."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._in_flight = 0
        self._since = 0.0

    @asynccontextmanager
    async def busy(self) -> AsyncIterator[None]:
        if self._in_flight == 0:
            self._since = time.perf_counter()
        self._in_flight += 1
        self.calls += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.seconds += time.perf_counter() - self._since

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


class TimedClient(PrometheusClient):
    """The real client; every request is also timed on ``clock``."""

    def __init__(self, url: str, *, clock: BusyClock, **options: Any) -> None:
        super().__init__(url, **options)
        self.clock = clock

    async def instant(
        self, expr: str, *, time: datetime, deadline: Deadline | None = None
    ) -> list[InstantSample]:
        async with self.clock.busy():
            return await super().instant(expr, time=time, deadline=deadline)

    async def range(
        self,
        expr: str,
        *,
        start: datetime,
        end: datetime,
        step: timedelta,
        deadline: Deadline | None = None,
    ) -> list[RangeSeries]:
        async with self.clock.busy():
            return await super().range(
                expr, start=start, end=end, step=step, deadline=deadline
            )


@dataclass
class TimedChunks:
    """The store's chunk history, every call timed on ``clock``."""

    store: Store
    clock: BusyClock

    async def get_chunks(
        self,
        indicator_key: str,
        datasource: str,
        chunk_seconds: int,
        *,
        start: datetime,
        end: datetime,
    ) -> list[CountChunk]:
        async with self.clock.busy():
            return await self.store.get_chunks(
                indicator_key, datasource, chunk_seconds, start=start, end=end
            )

    async def put_chunks(self, chunks: Iterable[CountChunk]) -> int:
        async with self.clock.busy():
            return await self.store.put_chunks(chunks)

    async def chunk_inventory(
        self,
        spans: Sequence[ChunkSpan],
        chunk_seconds: int,
        *,
        closed_before: datetime,
    ) -> dict[tuple[str, str], ChunkInventory]:
        async with self.clock.busy():
            return await self.store.chunk_inventory(
                spans, chunk_seconds, closed_before=closed_before
            )

    async def chunk_sums(
        self, spans: Sequence[ChunkSpan], chunk_seconds: int
    ) -> dict[str, ChunkSum]:
        async with self.clock.busy():
            return await self.store.chunk_sums(spans, chunk_seconds)


async def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    loaded = load_paths([arguments.specs])
    if not loaded.ok:
        raise SystemExit("\n".join(f.describe() for f in loaded.errors))
    slos = [obj for obj in loaded.objects if isinstance(obj, SLODefinition)]
    settings = load_settings(
        prometheus_url=arguments.prometheus, database_url=arguments.database_url
    )
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    store = await Store.open(
        arguments.database_url, pool_size=settings.database_pool_size
    )
    open_seconds = time.perf_counter() - started

    prometheus_clock, store_clock = BusyClock(), BusyClock()
    client = TimedClient(
        settings.prometheus_url,
        clock=prometheus_clock,
        timeout=settings.prometheus_timeout_seconds,
        concurrency=settings.evaluation_concurrency,
    )
    evaluator = Evaluator(
        lambda _url: client,
        default_datasource=settings.prometheus_url,
        chunks=TimedChunks(store, store_clock),
        options=options_from(settings, incremental=True),
    )
    at = datetime.fromtimestamp(arguments.at, tz=UTC)
    runs = {}
    try:
        for label, moment in (("cold", at), ("warm", at + TICK)):
            runs[label] = await _one_run(
                evaluator, store, slos, moment, client, prometheus_clock, store_clock
            )
    finally:
        await client.aclose()
        await store.close()
    return {
        "slos": len(slos),
        "start_seconds": IMPORTED - arguments.spawned_at,
        "imports_seconds": IMPORTED - IMPORTS_STARTED,
        "load_seconds": load_seconds,
        "open_store_seconds": open_seconds,
        "runs": runs,
    }


async def _one_run(
    evaluator: Evaluator,
    store: Store,
    slos: list[SLODefinition],
    at: datetime,
    client: TimedClient,
    prometheus_clock: BusyClock,
    store_clock: BusyClock,
) -> dict[str, Any]:
    prometheus_clock.reset()
    store_clock.reset()
    before = (client.stats.requests, client.stats.samples)

    started = time.perf_counter()
    outcome = await evaluator.evaluate(slos, at=at)
    evaluate_seconds = time.perf_counter() - started

    started = time.perf_counter()
    await store.put_snapshots(outcome.snapshots)
    snapshots_seconds = time.perf_counter() - started

    return {
        "evaluate_seconds": evaluate_seconds,
        "prometheus_busy_seconds": prometheus_clock.seconds,
        "chunk_store_busy_seconds": store_clock.seconds,
        "chunk_store_calls": store_clock.calls,
        "store_snapshots_seconds": snapshots_seconds,
        "requests": client.stats.requests - before[0],
        "samples": client.stats.samples - before[1],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB,
        "events": {
            snap.slo: [snap.events.good, snap.events.total]
            for snap in outcome.snapshots
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs")
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--at", type=int, required=True, help="Unix seconds")
    parser.add_argument("--spawned-at", type=float, required=True, help="Unix time")
    arguments = parser.parse_args()
    json.dump(asyncio.run(measure(arguments)), sys.stdout)


if __name__ == "__main__":
    main()
