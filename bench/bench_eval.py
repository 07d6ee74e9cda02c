"""Benchmark of ``sla eval`` against Google's slo-generator on the same Prometheus.

Writes N availability SLOs (default 1,000), one service each, over a month of
request counters on a 60 s grid (steady traffic; every fifth service has an outage),
builds TSDB blocks with promtool and starts Prometheus on a free loopback port
(the test harness's server). Then, on that one Prometheus:

- slo-generator 2.6.0 (``slo-generator compute``), in its own virtual environment
  under ``.bench/``, computes the same SLOs with its default error-budget policy;
- ``sla eval`` runs as a user runs it, in a subprocess against a fresh database:
  cold (no chunk history) at the anchor minute, then warm one tick later;
- the Evaluator runs in a process of its own without the command line around it,
  cold and warm, with the time of each phase;
- ``sla eval --no-cache`` evaluates at the minute slo-generator ran, and its SLIs
  are compared with slo-generator's for each of its four windows.

Run from the repository root:

    .venv/bin/python -m bench.bench_eval [--slos 1000] [--days 30] [--database-url URL]

Without a URL an embedded PostgreSQL is started in a temporary directory; with one,
two databases are created on that server and dropped at the end. The targets: a warm
tick evaluates at least ten times as many SLOs per second as slo-generator, and a
cold run takes less time than slo-generator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import asyncpg
import yaml
from bench import slo_generator
from bench.costs import (
    Cost,
    Finished,
    PrometheusWork,
    QueryLog,
    child_environment,
    run_measured,
)
from bench.traffic import (
    DAY,
    GOOD_CODE,
    METRIC,
    STEP,
    Service,
    make_services,
    write_openmetrics,
)
from tests.support.prometheus import (
    PROMTOOL_TIMEOUT_SECONDS,
    PrometheusHarnessError,
    PrometheusServer,
    find_binary,
)

from sla.clients.embedded import EmbeddedPostgres
from sla.clients.store.migrations import quote_identifier
from sla.dev.demo import create_blocks

REPOSITORY: Final = Path(__file__).resolve().parent.parent
CACHE_DIR: Final = REPOSITORY / ".bench"
"""Git-ignored; keeps slo-generator's virtual environment between runs."""

NAMESPACE: Final = "bench"
OBJECTIVE_PERCENT: Final = 99.9
"""slo-generator's ``goal`` 0.999, in percent as SLODefinition writes it."""

SLO_WINDOW: Final = "28d"
"""slo-generator has no SLO window; its default policy's longest step is 28 days."""

# slo-generator's default policy checks 1 hour (burn rate above 9 pages), 12 hours
# (above 3 pages) and 7 days (above 1.5, no page). The native SLOs carry the same
# rows, each with a short window a twelfth of its long one as the SRE workbook
# pairs them, so both tools answer the same windows and the SLIs can be compared
# window by window.
ALERT_ROWS: Final = (
    {"severity": "page", "longWindow": "1h", "shortWindow": "5m", "factor": 9},
    {"severity": "page", "longWindow": "12h", "shortWindow": "1h", "factor": 3},
    {"severity": "ticket", "longWindow": "7d", "shortWindow": "14h", "factor": 1.5},
)
COMPARED_WINDOWS: Final = {3_600: "1h", 43_200: "12h", 604_800: "7d"}
SLO_WINDOW_SECONDS: Final = 28 * DAY

TICK_SECONDS: Final = 60
"""The sla-tick PingSource fires every minute."""

FUTURE_SECONDS: Final = 3_600
"""History runs an hour past the anchor minute. Prometheus answers a query with
the samples up to the query's time only, so at any moment of the benchmark it looks
like a Prometheus scraping live up to that moment, and slo-generator (which asks at
the wall clock) sees the same series. Outages lie an hour or more away from every
window edge (bench/traffic.py), so slo-generator's numbers stay comparable as long
as it runs within this hour."""

RUN_TIMEOUT_SECONDS: Final = 1_800.0
"""Bound on every benchmarked command; slo-generator's 1,000 SLOs take minutes."""

SAME_NUMBERS_TOLERANCE: Final = 1e-5
"""Largest SLI difference accepted as "the same number". slo-generator rounds its
SLI to six decimals (±5e-7) and, asking off the 60 s grid, reads its window one
minute short at the start and a minute or two later than ours: at most the window's
error-ratio contrast over its length in minutes, about 5e-7 a minute for the worst
7-day window here. A wrong selector or window is off by 1e-4 or more."""

PROMTOOL_TIMEOUT_BULK_SECONDS: Final = PROMTOOL_TIMEOUT_SECONDS * 4
"""promtool took about 2 minutes for the default 86 million samples here; the
harness's bound is meant for test-sized histories."""

WARM_TARGET: Final = 10.0
COLD_TARGET: Final = 1.0
MIB: Final = 1024 * 1024


@dataclass
class Row:
    label: str
    slos: int
    seconds: float
    requests: int
    samples: int
    prometheus_seconds: float | None
    peak_rss_bytes: int

    @property
    def per_second(self) -> float:
        return self.slos / self.seconds


# -- specs ------------------------------------------------------------------------


def slo_key(service: Service) -> str:
    return f"{NAMESPACE}/{slo_generator.slo_name(service)}"


def write_native_slos(directory: Path, services: Sequence[Service]) -> None:
    """One SLODefinition per service: good (code 200) over all its requests."""
    directory.mkdir(parents=True)
    for service in services:
        selector = f'{METRIC}{{service="{service.name}"'
        document = {
            "apiVersion": "sla.dev/v1alpha1",
            "kind": "SLODefinition",
            "metadata": {
                "name": slo_generator.slo_name(service),
                "namespace": NAMESPACE,
            },
            "spec": {
                "service": service.name,
                "objective": OBJECTIVE_PERCENT,
                "window": SLO_WINDOW,
                "indicator": {
                    "ratio": {
                        "good": {"metric": f'{selector}, code="{GOOD_CODE}"}}'},
                        "total": {"metric": f"{selector}}}"},
                    }
                },
                "alerting": {"rows": list(ALERT_ROWS)},
            },
        }
        path = directory / f"{slo_generator.slo_name(service)}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))


# -- history and Prometheus ---------------------------------------------------------


def build_blocks(
    services: Sequence[Service], *, start: int, end: int, work_dir: Path
) -> Path:
    """Write the history as OpenMetrics, turn it into blocks, drop the text."""
    source, data_dir = work_dir / "history.om", work_dir / "data"
    data_dir.mkdir()
    began = time.perf_counter()
    samples = write_openmetrics(source, services, start=start, end=end)
    written = time.perf_counter() - began
    size = source.stat().st_size
    began = time.perf_counter()
    finished = create_blocks(
        find_binary("promtool"),
        source,
        data_dir,
        timeout=PROMTOOL_TIMEOUT_BULK_SECONDS,
    )
    source.unlink()
    if finished.returncode != 0:
        raise PrometheusHarnessError(f"promtool failed: {finished.stderr.strip()}")
    print(
        f"history: {len(services) * 2:,} series, {samples:,} samples "
        f"({size / MIB:,.0f} MiB of OpenMetrics) written in {written:.0f} s, "
        f"blocks built in {time.perf_counter() - began:.0f} s"
    )
    return data_dir


# -- databases ------------------------------------------------------------------


def database_url(server_url: str, name: str) -> str:
    return urlsplit(server_url)._replace(path=f"/{name}").geturl()


async def _admin(server_url: str, statements: Sequence[str]) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def fresh_databases(server_url: str, count: int) -> Iterator[list[str]]:
    """``count`` empty databases on the server, dropped afterwards."""
    names = [f"sla_bench_eval_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    created: list[str] = []
    try:
        for name in names:
            asyncio.run(
                _admin(server_url, [f"CREATE DATABASE {quote_identifier(name)}"])
            )
            created.append(name)
        yield [database_url(server_url, name) for name in names]
    finally:
        drops = [f"DROP DATABASE {quote_identifier(n)} WITH (FORCE)" for n in created]
        if drops:
            asyncio.run(_admin(server_url, drops))


# -- the runs -------------------------------------------------------------------


@dataclass
class Bench:
    services: Sequence[Service]
    prometheus_url: str
    query_log: QueryLog
    work_dir: Path
    specs: Path

    @property
    def slos(self) -> int:
        return len(self.services)

    def run(
        self, label: str, command: Sequence[str], environment: Mapping[str, str]
    ) -> Finished:
        return run_measured(
            command,
            query_log=self.query_log,
            work_dir=self.work_dir,
            environment=child_environment(environment),
            timeout=RUN_TIMEOUT_SECONDS,
            label=label,
        )

    def sla_eval(
        self, label: str, *, at: int, database: str | None, fresh: bool = False
    ) -> tuple[Row, list[dict[str, Any]]]:
        sla = shutil.which("sla", path=str(Path(sys.executable).parent))
        if sla is None:
            raise RuntimeError("no sla command beside this Python; install the project")
        command = [sla, "eval", str(self.specs), "--prometheus", self.prometheus_url]
        command += ["--at", str(at), "-o", "json"]
        if fresh:
            command.append("--no-cache")
        environment = {"SLA_DATABASE_URL": database} if database else {}
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        finished = self.run(slug, command, environment)
        return row_of(label, self.slos, finished.cost), json.loads(finished.stdout)


def row_of(label: str, slos: int, cost: Cost) -> Row:
    work: PrometheusWork = cost.prometheus
    return Row(
        label,
        slos,
        cost.seconds,
        work.requests,
        work.samples,
        work.seconds,
        cost.peak_rss_bytes,
    )


def run_slo_generator(
    bench: Bench, command: Path, *, directory: Path, config: Path
) -> tuple[Row, slo_generator.Reports, float]:
    """Time ``slo-generator compute``; return its row, reports and middle moment."""
    started = time.time()
    finished = bench.run(
        "slo-generator",
        [str(command), "compute", "-f", str(directory), "-c", str(config)],
        # Plain log lines, parsed below.
        {"COLORED_OUTPUT": "0", "DEBUG": "0"},
    )
    middle = (started + time.time()) / 2
    reports = slo_generator.parse_log(finished.stdout)
    row = row_of("slo-generator compute", bench.slos, finished.cost)
    return row, reports, middle


def run_in_process(
    bench: Bench, *, at: int, database: str
) -> tuple[list[Row], dict[str, Any]]:
    command = [sys.executable, "-m", "bench.eval_in_process", str(bench.specs)]
    command += ["--prometheus", bench.prometheus_url, "--database-url", database]
    command += ["--at", str(at), "--spawned-at", repr(time.time())]
    finished = bench.run("in-process", command, {"PYTHONPATH": str(REPOSITORY)})
    report = json.loads(finished.stdout)
    rows = []
    for label, run in report["runs"].items():
        # The worker's own stats: the query log spans both of its runs.
        seconds = run["evaluate_seconds"] + run["store_snapshots_seconds"]
        rows.append(
            Row(
                f"in-process {label} (evaluate + store)",
                report["slos"],
                seconds,
                run["requests"],
                run["samples"],
                None,
                run["peak_rss_bytes"],
            )
        )
    return rows, report


# -- checks ---------------------------------------------------------------------


def exact_counts(
    events: Mapping[str, Sequence[float] | None],
    services: Sequence[Service],
    *,
    at: int,
) -> int:
    """How many SLOs report exactly the window's good and total from the arithmetic."""
    matching = 0
    for service in services:
        expected = service.counts(at - SLO_WINDOW_SECONDS, at)
        found = events.get(slo_key(service))
        if found is not None and tuple(found) == tuple(map(float, expected)):
            matching += 1
    return matching


def events_of(snapshots: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    return {
        snap["slo"]: [snap["events"]["good"], snap["events"]["total"]]
        for snap in snapshots
    }


def our_slis(snapshot: Mapping[str, Any]) -> dict[int, float | None]:
    """SLI per window: the SLO window's own, the others from their burn rates."""
    allowed = 1 - OBJECTIVE_PERCENT / 100
    rates = snapshot["burn_rates"]
    slis: dict[int, float | None] = {SLO_WINDOW_SECONDS: snapshot["sli"]}
    for seconds, name in COMPARED_WINDOWS.items():
        rate = rates.get(name)
        slis[seconds] = None if rate is None else 1 - rate * allowed
    return slis


def compare(
    snapshots: Sequence[Mapping[str, Any]],
    reports: slo_generator.Reports,
    services: Sequence[Service],
) -> dict[int, tuple[int, float]]:
    """Per window: SLOs compared and the largest absolute SLI difference."""
    by_key = {snap["slo"]: snap for snap in snapshots}
    largest: dict[int, tuple[int, float]] = {}
    for service in services:
        ours = our_slis(by_key[slo_key(service)])
        for seconds, sli in ours.items():
            theirs = reports.sli.get((slo_generator.slo_name(service), seconds))
            compared, worst = largest.get(seconds, (0, 0.0))
            if sli is None or theirs is None:
                largest[seconds] = (compared, math.inf)
                continue
            largest[seconds] = (compared + 1, max(worst, abs(sli - theirs)))
    return largest


# -- printing ---------------------------------------------------------------------


def print_table(rows: Sequence[Row]) -> None:
    header = (
        f"{'run':<40} {'seconds':>8} {'SLOs/s':>8} {'requests':>9} {'req/SLO':>8} "
        f"{'samples':>13} {'samples/SLO':>11} {'Prom s':>7} {'peak RSS':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        prometheus = "" if row.prometheus_seconds is None else row.prometheus_seconds
        print(
            f"{row.label:<40} {row.seconds:>8.2f} {row.per_second:>8.1f} "
            f"{row.requests:>9,} {row.requests / row.slos:>8.2f} {row.samples:>13,} "
            f"{row.samples / row.slos:>11,.0f} "
            f"{prometheus if prometheus == '' else f'{prometheus:.2f}':>7} "
            f"{row.peak_rss_bytes / MIB:>6.0f} MiB"
        )


def print_phases(report: Mapping[str, Any]) -> None:
    runs = report["runs"]
    print("\nin-process phases, seconds          cold      warm")
    once = (
        ("process start and imports", report["start_seconds"]),
        ("load specs", report["load_seconds"]),
        ("open store (pool, migrations)", report["open_store_seconds"]),
    )
    for label, seconds in once:
        print(f"  {label:<32} {seconds:>7.2f}   (once)")
    phases = (
        ("evaluate", "evaluate_seconds"),
        ("  Prometheus requests busy", "prometheus_busy_seconds"),
        ("  chunk store busy", "chunk_store_busy_seconds"),
        ("store snapshots", "store_snapshots_seconds"),
    )
    for label, key in phases:
        print(f"  {label:<32} {runs['cold'][key]:>7.2f} {runs['warm'][key]:>9.2f}")
    rest = [
        run["evaluate_seconds"]
        - run["prometheus_busy_seconds"]
        - run["chunk_store_busy_seconds"]
        for run in (runs["cold"], runs["warm"])
    ]
    print(f"  {'  the rest (CPU in the loop)':<32} {rest[0]:>7.2f} {rest[1]:>9.2f}")
    calls = runs["cold"]["chunk_store_calls"], runs["warm"]["chunk_store_calls"]
    print(f"  {'chunk store calls':<32} {calls[0]:>7} {calls[1]:>9}")


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_targets(reference: Row, cold: Row, warm: Row, label: str) -> None:
    ratio = warm.per_second / reference.per_second
    print(
        f"{label} warm tick: {warm.per_second:,.1f} SLOs/s = {ratio:.1f}x "
        f"slo-generator's {reference.per_second:,.1f} (target >= {WARM_TARGET:.0f}x): "
        f"{verdict(ratio >= WARM_TARGET)}"
    )
    speedup = reference.seconds / cold.seconds
    print(
        f"{label} cold run: {cold.seconds:.2f} s vs slo-generator's "
        f"{reference.seconds:.2f} s = {speedup:.2f}x its speed (target > "
        f"{COLD_TARGET:.0f}x): {verdict(speedup > COLD_TARGET)}"
    )


def print_comparison(
    largest: Mapping[int, tuple[int, float]], reports: slo_generator.Reports
) -> None:
    names = {**COMPARED_WINDOWS, SLO_WINDOW_SECONDS: SLO_WINDOW}
    parts = [
        f"{names[seconds]} {worst:.1e} ({compared})"
        for seconds, (compared, worst) in sorted(largest.items())
    ]
    overall = max(worst for _, worst in largest.values())
    print(
        "same numbers: largest |SLI difference| per window (SLOs compared): "
        + ", ".join(parts)
    )
    print(
        f"  overall {overall:.1e}, tolerance {SAME_NUMBERS_TOLERANCE:.0e}: "
        f"{verdict(overall <= SAME_NUMBERS_TOLERANCE)}; slo-generator errors: "
        f"{len(reports.errors)}"
    )


# -- main -----------------------------------------------------------------------


def run(arguments: argparse.Namespace, stack: ExitStack, work_dir: Path) -> None:
    anchor = int(time.time()) // STEP * STEP
    start, end = anchor - arguments.days * DAY, anchor + FUTURE_SECONDS
    services = make_services(arguments.slos, anchor=anchor)
    command = slo_generator.ensure_installed(CACHE_DIR / "slo-generator-venv")
    print(
        f"{len(services):,} SLOs, history {arguments.days} days on a {STEP} s grid "
        f"to {_iso(anchor)} (+{FUTURE_SECONDS // 60} min), slo-generator {command}"
    )

    specs, generator_dir = work_dir / "specs", work_dir / "slo-generator"
    write_native_slos(specs, services)
    slo_generator.write_slos(generator_dir / "slos", services)
    config = generator_dir / "config.yaml"

    data_dir = build_blocks(services, start=start, end=end, work_dir=work_dir)
    server = PrometheusServer.start(
        data_dir=data_dir, work_dir=work_dir, enable_lifecycle=True
    )
    stack.callback(server.stop)
    query_log = QueryLog(server, work_dir / "query.log")
    slo_generator.write_config(config, prometheus_url=server.url)

    if arguments.database_url:
        server_url = arguments.database_url
    else:
        embedded = stack.enter_context(EmbeddedPostgres(work_dir / "postgres"))
        server_url = embedded.url
    cli_database, worker_database = stack.enter_context(fresh_databases(server_url, 2))
    bench = Bench(services, server.url, query_log, work_dir, specs)

    reference, reports, middle = run_slo_generator(
        bench, command, directory=generator_dir / "slos", config=config
    )
    if middle - anchor > FUTURE_SECONDS - TICK_SECONDS:
        raise RuntimeError("slo-generator ran past the history; rerun the benchmark")
    compared_at = int(middle) // STEP * STEP
    fresh, fresh_snapshots = bench.sla_eval(
        "sla eval --no-cache (at slo-generator's)",
        at=compared_at,
        database=None,
        fresh=True,
    )
    cold, cold_snapshots = bench.sla_eval(
        "sla eval cold", at=anchor, database=cli_database
    )
    warm, warm_snapshots = bench.sla_eval(
        "sla eval warm (next tick)", at=anchor + TICK_SECONDS, database=cli_database
    )
    in_process, report = run_in_process(bench, at=anchor, database=worker_database)

    print()
    print_table([reference, cold, warm, fresh, *in_process])
    print(
        "samples: Prometheus' query log (totalQueryableSamples); in-process rows "
        "from PrometheusClient.stats.\nProm s: Prometheus' own execTotalTime summed "
        "over the run's queries."
    )
    print_phases(report)
    print()
    print_targets(reference, cold, warm, "sla eval")
    print_targets(reference, in_process[0], in_process[1], "in-process")

    print()
    checks = (
        ("sla eval cold", events_of(cold_snapshots), anchor),
        ("sla eval warm", events_of(warm_snapshots), anchor + TICK_SECONDS),
        ("sla eval --no-cache", events_of(fresh_snapshots), compared_at),
        ("in-process cold", report["runs"]["cold"]["events"], anchor),
        ("in-process warm", report["runs"]["warm"]["events"], anchor + TICK_SECONDS),
    )
    for label, events, at in checks:
        matching = exact_counts(events, services, at=at)
        print(
            f"exact {SLO_WINDOW} counts, {label}: {matching:,} of {len(services):,} "
            "SLOs match the arithmetic"
        )
    print(
        f"slo-generator asked around {_iso(int(middle))}; sla eval --no-cache at "
        f"{_iso(compared_at)}"
    )
    print_comparison(compare(fresh_snapshots, reports, services), reports)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slos", type=int, default=1_000, help="SLOs (services)")
    parser.add_argument(
        "--days", type=int, default=30, help="days of history (at least 29)"
    )
    parser.add_argument("--database-url", help="PostgreSQL URL (default: embedded)")
    arguments = parser.parse_args()
    if arguments.days < 29 or arguments.slos < 1:
        # The 28-day window needs its whole length plus a day before it.
        parser.error("--days must be at least 29 and --slos at least 1")
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-eval-") as directory,
        ExitStack() as stack,
    ):
        run(arguments, stack, Path(directory))


if __name__ == "__main__":
    main()
