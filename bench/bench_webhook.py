"""Benchmark of webhook-intake: notifications per second and latency, one worker.

Runs everything on 127.0.0.1 and stops it all at the end:

- the function as Knative runs it, ``sla serve webhook-intake`` (one uvicorn
  process, one event loop), with a bearer token and a store in a schema of its
  own (dropped at the end);
- a recording sink in a process of its own, playing the broker ingress: it answers
  202 to every event and counts the ids it got, so the run can check that every
  alert arrived exactly once;
- a load generator here, on keep-alive connections with a minimal HTTP/1.1
  client (an HTTP library would cost more than the trivial endpoint it measures).

Phases, each bounded by a request count and a time limit:

1. ``GET /healthz/live``: the same server's trivial endpoint, the reference;
2. new notifications of 1 to 50 alerts (uniform), realistic labels and
   annotations, every alert new: one claim statement, one post per alert to the
   sink, one record statement per notification;
3. the same notifications again, as Alertmanager resends them every
   ``repeat_interval``: every alert a duplicate, nothing posted.

Each phase also prints the function's CPU time per request (from Linux's
``/proc``), and what share of the phase's time the worker was busy: one post per
alert to the sink, not the webhook request, is most of a notification's cost, so
this says how far from the trivial endpoint's figure the real path can be.

Target: phase 2 at least half the trivial endpoint's throughput, p99 under 50 ms.

    .venv/bin/python -m bench.bench_webhook [--requests 3000] [--seconds 20]
        [--concurrency 4] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
from tests.support.servers import free_port, wait_for_port

from sla.clients.store import Store
from sla.clients.store.migrations import quote_identifier
from sla.services.alert_intake import label_fingerprint

ROOT: Final = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL: Final = "postgresql://postgres@127.0.0.1:5432/test"
TOKEN: Final = "bench-webhook-token"
START_SECONDS: Final = 30.0
MAX_ALERTS: Final = 50
SEED: Final = 20260105


# -- the sink -------------------------------------------------------------------------


class _SinkProtocol(asyncio.Protocol):
    """Answers 202 to each request; records ``ce-id`` headers; GET returns counts."""

    ids: list[str] = []  # noqa: RUF012 - one list for the whole sink process

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = dict(
                (name.strip().lower(), value.strip())
                for name, _, value in (line.partition(":") for line in head[1:])
            )
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self._answer(head[0], headers)

    def _answer(self, request_line: str, headers: dict[str, str]) -> None:
        if request_line.startswith("GET"):
            body = json.dumps(
                {"events": len(self.ids), "distinct": len(set(self.ids))}
            ).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            return
        if "ce-id" in headers:
            self.ids.append(headers["ce-id"])
        self.transport.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")


async def _run_sink(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_SinkProtocol, "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


# -- the load generator ---------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                "127.0.0.1", self.port
            )
        assert self.reader is not None
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        content = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()


def post_head(length: int) -> bytes:
    return (
        "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        "user-agent: Alertmanager/0.25.0\r\n"
        "content-type: application/json\r\n"
        f"authorization: Bearer {TOKEN}\r\n"
        f"content-length: {length}\r\n\r\n"
    ).encode()


async def load(
    port: int,
    requests: Sequence[tuple[bytes, bytes]],
    *,
    concurrency: int,
    seconds: float,
) -> tuple[list[float], float, dict[int, int]]:
    """Send ``requests`` (head, body) on ``concurrency`` connections until all are
    sent or ``seconds`` pass; return latencies, elapsed time, answers by status."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(requests)
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        connection = Connection(port)
        try:
            for head, body in queue:
                if time.monotonic() > deadline:
                    return
                sent = time.perf_counter()
                status, _ = await connection.request(head, body)
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, statuses


# -- payloads -------------------------------------------------------------------------

SERVICES: Final = ("checkout", "search", "cart", "payments", "catalog", "auth")
ALERTNAMES: Final = ("SLOErrorBudgetBurn", "HighErrorRate", "HighLatency", "PodCrash")


def notifications(count: int, *, rng: random.Random) -> Iterator[tuple[bytes, int]]:
    """Version-4 bodies of 1 to 50 alerts each, every alert distinct."""
    now = datetime.now(UTC).replace(microsecond=0)
    serial = 0
    for _ in range(count):
        size = rng.randint(1, MAX_ALERTS)
        alertname = rng.choice(ALERTNAMES)
        alerts = []
        for _ in range(size):
            serial += 1
            alerts.append(_alert(alertname, serial, now=now, rng=rng))
        body = {
            "version": "4",
            "groupKey": f'{{}}/{{severity="page"}}:{{alertname="{alertname}"}}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "sla-webhook",
            "groupLabels": {"alertname": alertname},
            "commonLabels": {"alertname": alertname, "severity": "page"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.monitoring:9093",
            "alerts": alerts,
        }
        yield json.dumps(body).encode(), size


def _alert(
    alertname: str, serial: int, *, now: datetime, rng: random.Random
) -> dict[str, Any]:
    service = rng.choice(SERVICES)
    labels = {
        "alertname": alertname,
        "namespace": f"team-{service}",
        "service": service,
        "severity": "page",
        "slo": f"{service}-availability",
        "sloth_id": f"{service}-availability",
        "instance": f"10.0.{serial // 250}.{serial % 250}:8080",
        "pod": f"{service}-{uuid.UUID(int=serial).hex[:10]}-x{serial % 97}",
        "job": "kubernetes-pods",
        "prometheus": "monitoring/k8s",
    }
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {
            "summary": f"{service} is burning its error budget",
            "description": f"{service} error budget burn rate is above 14.4 over 1h",
            "runbook_url": f"https://runbooks.example.com/{service}/{alertname}",
        },
        "startsAt": (now - timedelta(seconds=serial % 600)).isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": (
            "http://prometheus.monitoring:9090/graph?g0.expr=slo%3Asli_error%3A"
            "ratio_rate1h%7Bsloth_id%3D%22" + service + "%22%7D+%3E+%2814.4+%2A+0.001"
        ),
        "fingerprint": label_fingerprint(labels),
    }


# -- processes ------------------------------------------------------------------------


@contextmanager
def process(
    command: list[str], env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=START_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=START_SECONDS)


async def create_schema(url: str, schema: str) -> None:
    store = await Store.open(url, schema=schema, pool_size=1)
    await store.close()


async def drop_schema(url: str, schema: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            f"DROP SCHEMA IF EXISTS {quote_identifier(schema)} CASCADE"
        )
    finally:
        await connection.close()


async def sink_counts(port: int) -> dict[str, int]:
    connection = Connection(port)
    try:
        _, body = await connection.request(get_request("/stats"))
    finally:
        await connection.close()
    counts: dict[str, int] = json.loads(body)
    return counts


# -- the run --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time a process has used so far, or None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # After the command name in parentheses: state is field 3, utime 14, stime 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(
    pid: int,
    port: int,
    requests: Sequence[tuple[bytes, bytes]],
    *,
    concurrency: int,
    seconds: float,
) -> tuple[list[float], float, dict[int, int], float | None]:
    """:func:`load`, and the CPU time the function's process spent meanwhile."""
    before = cpu_seconds(pid)
    latencies, elapsed, statuses = await load(
        port, requests, concurrency=concurrency, seconds=seconds
    )
    after = cpu_seconds(pid)
    cpu = None if before is None or after is None else after - before
    return latencies, elapsed, statuses, cpu


def report_cpu(
    cpu: float | None, requests: int, elapsed: float, *, alerts: int = 0
) -> None:
    if cpu is None or not requests:
        return
    per_alert = f", {cpu / alerts * 1e6:.0f} us per alert" if alerts else ""
    print(
        f"{'':<34} function CPU {cpu / requests * 1000:.3f} ms per request"
        f"{per_alert}; busy {cpu / elapsed:.0%} of the phase"
    )


def report(
    name: str, latencies: list[float], elapsed: float, statuses: dict[int, int]
) -> float:
    rate = len(latencies) / elapsed
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(
        f"{name:<34} {len(latencies):>6} requests in {elapsed:6.2f} s  "
        f"{rate:8.1f} /s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    return rate


async def bench(
    args: argparse.Namespace, function_port: int, sink_port: int, function_pid: int
) -> None:
    rng = random.Random(SEED)
    bodies = list(notifications(args.requests, rng=rng))
    posts = [(post_head(len(body)), body) for body, _ in bodies]
    trivial = [(get_request("/healthz/live"), b"")] * args.requests
    print(
        f"one worker (sla serve webhook-intake), concurrency {args.concurrency}, "
        f"at most {args.requests} requests or {args.seconds:.0f} s per phase; "
        f"payloads of 1-{MAX_ALERTS} alerts, mean "
        f"{statistics.mean(size for _, size in bodies):.1f}"
    )

    # Warm-up: the store pool, the sink client, imports on the first request.
    await load(function_port, posts[:5], concurrency=1, seconds=args.seconds)
    await load(function_port, trivial[:50], concurrency=1, seconds=args.seconds)

    latencies, elapsed, statuses, cpu = await measured(
        function_pid,
        function_port,
        trivial,
        concurrency=args.concurrency,
        seconds=args.seconds,
    )
    reference = report("GET /healthz/live (trivial)", latencies, elapsed, statuses)
    report_cpu(cpu, len(latencies), elapsed)
    latencies, elapsed, statuses, cpu = await measured(
        function_pid,
        function_port,
        posts[5:],
        concurrency=args.concurrency,
        seconds=args.seconds,
    )
    rate = report("POST new notifications", latencies, elapsed, statuses)
    sent_alerts = sum(size for _, size in bodies[: 5 + len(latencies)])
    phase_alerts = sum(size for _, size in bodies[5 : 5 + len(latencies)])
    counts = await sink_counts(sink_port)
    print(
        f"{'':<34} {sent_alerts} alerts sent (with the warm-up's), "
        f"{counts['events']} events at the sink, {counts['distinct']} distinct; "
        f"{phase_alerts / elapsed:.0f} alerts/s"
    )
    report_cpu(cpu, len(latencies), elapsed, alerts=phase_alerts)
    sent = len(latencies) + 5
    again, again_elapsed, again_statuses, again_cpu = await measured(
        function_pid,
        function_port,
        posts[:sent],
        concurrency=args.concurrency,
        seconds=args.seconds,
    )
    report("POST the same again (duplicates)", again, again_elapsed, again_statuses)
    after = await sink_counts(sink_port)
    print(f"{'':<34} events at the sink after the resends: {after['events']}")
    report_cpu(again_cpu, len(again), again_elapsed)
    p99 = sorted(latencies)[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"target: >= {reference / 2:.1f} notifications/s (half the trivial "
        f"endpoint) -> {'met' if rate >= reference / 2 else 'NOT met'} "
        f"({rate:.1f}); p99 < 50 ms -> {'met' if p99 < 50 else 'NOT met'} "
        f"({p99:.2f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SLA_TEST_DATABASE_URL", DEFAULT_DATABASE_URL),
    )
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        asyncio.run(_run_sink(args.sink))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(create_schema(args.database_url, schema))
    sink_port, function_port = free_port(), free_port()
    separator = "&" if "?" in args.database_url else "?"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_")}
    env.update(
        SLA_DATABASE_URL=f"{args.database_url}{separator}search_path={schema}",
        SLA_WEBHOOK_TOKEN=TOKEN,
        K_SINK=f"http://127.0.0.1:{sink_port}/",
    )
    sla = str(Path(sys.executable).parent / "sla")
    sink_command = [
        sys.executable,
        "-m",
        "bench.bench_webhook",
        "--sink",
        str(sink_port),
    ]
    serve_command = [sla, "serve", "webhook-intake", "--port", str(function_port)]
    try:
        with process(sink_command, env), process(serve_command, env) as function:
            wait_for_port(sink_port, timeout=START_SECONDS)
            wait_for_port(function_port, timeout=START_SECONDS)
            asyncio.run(bench(args, function_port, sink_port, function.pid))
    finally:
        asyncio.run(drop_schema(args.database_url, schema))


if __name__ == "__main__":
    main()
