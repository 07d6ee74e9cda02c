"""Benchmark of the functions as they run: cold starts, imports, and a full tick.

- Import time of each function module, in a fresh interpreter, loaded the way
  functions-framework loads it.
- Cold start of each function: from spawning ``sla serve NAME`` on a free
  127.0.0.1 port to the first 2xx answer to a real event (polling until it comes).
- One tick of 1,000 SLOs end to end: a Prometheus with two days of generated
  history (the test harness), the store, ``sla serve sli-calculator`` and a
  recording sink that plays the broker: the tick fans out into shards, the shard
  events are delivered back to the function as the broker would deliver them, and
  every ``budget.calculated`` event must reach the sink. Run twice: cold (no chunk
  history yet) and warm (the next minute).

Targets: a cold start under one second per function; 1,000 SLOs well within a
one-minute tick.

    .venv/bin/python -m bench.bench_functions [--slos 1000] [--database-url URL]

The database defaults to the test server (``SLA_TEST_DATABASE_URL``, else
postgresql://postgres@127.0.0.1:5432/test); the tables live in a schema of their
own, dropped at the end. Every server binds to 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
from tests.support.functions import RecordingSink, binary_event, function_source
from tests.support.prometheus import (
    PrometheusServer,
    Timeline,
    openmetrics,
    requests,
    write_blocks,
)
from tests.support.servers import free_port

from sla.clients.store import CatalogueEntry, Store
from sla.clients.store.migrations import quote_identifier

FUNCTIONS: Final = (
    "sli-calculator",
    "slo-catalog",
    "policy-evaluator",
    "freeze-enforcer",
    "webhook-intake",
    "budget-api",
)
EVENT_FIRST: Final = ("sli-calculator", "slo-catalog")
"""Functions timed to their first accepted event; the others to their first 2xx
readiness answer (which needs the store), as Knative's probe sees them."""
RUNS: Final = 3
START_TIMEOUT_SECONDS: Final = 30.0
TICK_TIMEOUT_SECONDS: Final = 300.0
JOBS: Final = 50
"""Distinct services in the history; the SLOs spread over them, each SLO asking its
own queries, so Prometheus does the work of 1,000 SLOs all the same."""

DAY0: Final = datetime(2026, 1, 1, tzinfo=UTC)
END: Final = DAY0 + timedelta(days=2)
TICK_SOURCE: Final = "/apis/v1/namespaces/sla-system/pingsources/sla-tick"
DEFAULT_DATABASE_URL: Final = "postgresql://postgres@127.0.0.1:5432/test"
ROOT: Final = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SLA_TEST_DATABASE_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_schema(args.database_url, schema))
    try:
        run(database_url=args.database_url, schema=schema, slos=args.slos)
    finally:
        asyncio.run(_drop_schema(args.database_url, schema))


def run(*, database_url: str, schema: str, slos: int) -> None:
    sink = RecordingSink().start()
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-") as work,
        prometheus(Path(work)) as prometheus_url,
    ):
        env = function_env(database_url, schema, prometheus_url, sink.url)
        print("import time of each function module (fresh interpreter, median of 3)")
        for name in FUNCTIONS:
            print(f"  {name:15} {median(import_seconds(name, env)) * 1000:7.0f} ms")
        print("cold start: spawn `sla serve NAME` to first 2xx (median of 3)")
        for name in FUNCTIONS:
            print(f"  {name:15} {median(cold_starts(name, env)) * 1000:7.0f} ms")
        print(f"one tick of {slos} SLOs end to end (shards of 500, via the sink)")
        asyncio.run(_add_slos(database_url, schema, slos))
        with served("sli-calculator", env) as url:
            for label, at in (("cold", END), ("warm", END + timedelta(minutes=1))):
                seconds = tick(url, sink, at=at, slos=slos)
                print(
                    f"  {label}: {seconds:6.2f} s, {slos / seconds:7.0f} SLOs/s "
                    f"({len(sink.events())} events at the sink)"
                )
    sink.stop()


# -- Prometheus and the catalogue ------------------------------------------------


@contextmanager
def prometheus(work: Path) -> Iterator[str]:
    timeline = Timeline(start=DAY0, end=END)
    series: list[Any] = []
    for job in range(JOBS):
        ratio = Fraction(1, 100) if job % 5 else Fraction(1, 20)
        series += requests(
            timeline=timeline,
            per_step=60,
            error_ratio=ratio,
            labels={"job": f"svc-{job}"},
        )
    data = work / "data"
    data.mkdir()
    write_blocks(openmetrics(series), data_dir=data, work_dir=work)
    server = PrometheusServer.start(data_dir=data, work_dir=work)
    try:
        yield server.url
    finally:
        server.stop()


def slo_document(index: int) -> dict[str, Any]:
    job = f"svc-{index % JOBS}"
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": "SLODefinition",
        "metadata": {"name": f"slo-{index:04d}", "namespace": "bench", "generation": 1},
        "spec": {
            "service": job,
            # Objectives differ so no two SLOs are the same question.
            "objective": 95 + (index % 40) / 10,
            "window": "1d",
            "indicator": {
                "ratio": {
                    "bad": {"metric": f'http_requests_total{{job="{job}",code="500"}}'},
                    "total": {"metric": f'http_requests_total{{job="{job}"}}'},
                }
            },
        },
    }


async def _add_slos(database_url: str, schema: str, count: int) -> None:
    store = await Store.open(database_url, schema=schema, pool_size=2)
    try:
        async with store.transaction() as tx:
            for index in range(count):
                document = slo_document(index)
                await tx.upsert_catalogue(
                    CatalogueEntry(
                        kind="SLODefinition",
                        namespace="bench",
                        name=document["metadata"]["name"],
                        source="kubernetes",
                        generation=1,
                        document=document,
                    )
                )
    finally:
        await store.close()


async def _create_schema(url: str, schema: str) -> None:
    store = await Store.open(url, schema=schema, pool_size=1)
    await store.close()


async def _drop_schema(url: str, schema: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f"DROP SCHEMA {quote_identifier(schema)} CASCADE")
    finally:
        await connection.close()


# -- processes --------------------------------------------------------------------


def function_env(
    database_url: str, schema: str, prometheus_url: str, sink_url: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_")}
    env.update(
        SLA_DATABASE_URL=f"{database_url}?search_path={schema}",
        SLA_PROMETHEUS_URL=prometheus_url,
        SLA_LOG_LEVEL="WARNING",
        K_SINK=sink_url,
        # The kubeconfig is only read when slo-catalog first talks to the cluster.
        SLA_KUBECONFIG=os.devnull,
        # webhook-intake refuses to start without credentials unless told.
        SLA_WEBHOOK_AUTH="none",
    )
    return env


def import_seconds(name: str, env: Mapping[str, str]) -> list[float]:
    code = (
        "import time; started = time.perf_counter()\n"
        "from functions_framework import _function_registry as r\n"
        f"module, spec = r.load_function_module({str(function_source(name))!r})\n"
        "spec.loader.exec_module(module)\n"
        "print(time.perf_counter() - started)\n"
    )
    return [
        float(
            subprocess.run(
                [sys.executable, "-c", code],
                env=dict(env),
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        )
        for _ in range(RUNS)
    ]


def first_event(name: str) -> tuple[dict[str, str], bytes]:
    if name == "sli-calculator":
        # An empty minute of the catalogue: nothing to evaluate, answered 202.
        return binary_event(
            "dev.knative.sources.ping",
            source=TICK_SOURCE,
            id=f"start-{uuid.uuid4()}",
            time="2020-01-01T00:00:00Z",
        )
    # A deletion: the one slo-catalog event that does not reach the cluster, whose
    # first call imports the kubernetes package (about 0.3 s more).
    obj = {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": "SLAPolicy",
        "metadata": {"name": f"p-{uuid.uuid4().hex[:8]}", "namespace": "start"},
        "spec": {"slos": {"names": ["none"]}},
    }
    return binary_event(
        "dev.knative.apiserver.resource.delete",
        source="https://127.0.0.1:6443",
        id=f"start-{uuid.uuid4()}",
        data=obj,
    )


def spawn(name: str, env: Mapping[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "sla"), "serve", name]
    command += ["--port", str(port), "--functions", str(ROOT / "functions")]
    return subprocess.Popen(
        command, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def until_accepted(
    url: str, name: str, process: subprocess.Popen[bytes], deadline: float
) -> None:
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"{name} exited at start:\n{error}")
            try:
                if name in EVENT_FIRST:
                    headers, body = first_event(name)
                    answer = client.post(url, headers=headers, content=body)
                else:
                    answer = client.get(f"{url.rstrip('/')}/healthz/ready")
            except httpx.TransportError:
                time.sleep(0.005)
                continue
            if answer.is_success:
                return
            raise RuntimeError(f"{name} answered {answer.status_code}: {answer.text}")
    raise RuntimeError(f"{name} did not accept an event in time")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def cold_starts(name: str, env: Mapping[str, str]) -> list[float]:
    timings = []
    for _ in range(RUNS):
        port = free_port()
        started = time.monotonic()
        process = spawn(name, env, port)
        try:
            until_accepted(
                f"http://127.0.0.1:{port}/",
                name,
                process,
                started + START_TIMEOUT_SECONDS,
            )
            timings.append(time.monotonic() - started)
        finally:
            stop(process)
    return timings


@contextmanager
def served(name: str, env: Mapping[str, str]) -> Iterator[str]:
    port = free_port()
    process = spawn(name, env, port)
    url = f"http://127.0.0.1:{port}/"
    try:
        until_accepted(url, name, process, time.monotonic() + START_TIMEOUT_SECONDS)
        yield url
    finally:
        stop(process)


# -- the tick ---------------------------------------------------------------------


def tick(url: str, sink: RecordingSink, *, at: datetime, slos: int) -> float:
    """Seconds from posting the tick to every budget event being at the sink."""
    sink.received.clear()
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.monotonic()
    with httpx.Client(timeout=TICK_TIMEOUT_SECONDS, trust_env=False) as client:
        headers, body = binary_event(
            "dev.knative.sources.ping",
            source=TICK_SOURCE,
            id=f"tick-{stamp}",
            time=stamp,
        )
        answer = client.post(url, headers=headers, content=body)
        answer.raise_for_status()
    shards = [e for e in sink.events() if e.type == "dev.sla.slo.evaluate"]
    # The broker delivers the shards to sli-calculator's pods concurrently.
    asyncio.run(_deliver_all(url, shards))
    elapsed = time.monotonic() - started
    budgets = [e for e in sink.events() if e.type == "dev.sla.budget.calculated"]
    if len({event.id for event in budgets}) != slos:
        raise RuntimeError(f"{len(budgets)} budget events for {slos} SLOs")
    return elapsed


async def _deliver_all(url: str, events: list[Any]) -> None:
    async with httpx.AsyncClient(timeout=TICK_TIMEOUT_SECONDS, trust_env=False) as c:
        answers = await asyncio.gather(
            *(c.post(url, headers=_event_headers(e), content=e.body) for e in events)
        )
    for answer in answers:
        if not answer.is_success:
            raise RuntimeError(f"a shard was answered {answer.status_code}")


def _event_headers(event: Any) -> dict[str, str]:
    return {
        name: value
        for name, value in event.headers.items()
        if name.startswith("ce-") or name == "content-type"
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    main()
