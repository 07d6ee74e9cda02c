"""A real Prometheus with history written by the test, and a fake one for failures.

Tests describe series in Python, the harness writes them as OpenMetrics text, turns
that into TSDB blocks with ``promtool tsdb create-blocks-from openmetrics`` and
starts Debian's ``prometheus`` on a free loopback port over those blocks::

    timeline = Timeline(start=HOUR_0, end=HOUR_0 + timedelta(hours=2))
    url = prometheus_factory(
        requests(timeline=timeline, per_step=60, error_ratio=Fraction(1, 100))
    )

Counting conventions, so expected values can be worked out by hand:

- Samples sit on ``timeline``'s grid, every ``step`` seconds (60 by default) from
  ``start`` to ``end``, both included. Counters read 0 at ``start``.
- The events of the step that ends at sample time ``t`` are counted in the sample
  at ``t``. A phase from ``a`` to ``b`` therefore governs the samples in
  ``(a, b]``, and ``increase(x[b - a])`` evaluated at ``b`` sees exactly its events.
- Counts are whole numbers: a fractional rate (one event every ten minutes is
  ``Fraction(1, 10)`` per step) accumulates exactly and each sample holds the
  floor of the running total; errors are the floor of the running total of
  ``new events × error ratio``, so 60 a minute at 1 % is 36 errors in every hour.

Why ``increase()`` is exact here (Prometheus 2.42, checked by
``tests/shared/clients/test_prometheus_harness.py``): a range selector ``[1h]``
evaluated at ``T`` takes the samples in ``[T - 1h, T]``, both ends included in
2.x. With samples on a 60 s grid and ``T`` on the grid, the first and last samples
sit exactly on the range's ends, so Prometheus has nothing to extrapolate and
``increase`` is ``last - first`` (plus any counter resets). Off the grid, or on
Prometheus 3.x (whose ranges leave the start out), the result is extrapolated.

The ``prometheus_factory`` fixture (session-scoped) starts one Prometheus per
distinct data set and configuration and stops them all at the end of the session.
``tests/conftest.py`` registers this module as a plugin, so its fixtures reach
every test. The binaries must be installed: a missing one is an error,
not a skip, because these tests are the only check of the queries.

``FakePrometheus`` answers with scripted statuses and delays. It exists only for
failure modes real Prometheus cannot be made to show on demand (500, 503, 422,
slowness); normal paths are tested against the real server.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import math
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from sla.dev.demo import create_blocks
from sla.dev.processes import log_tail, stop_process

__all__ = [
    "FakePrometheus",
    "Phase",
    "PrometheusFactory",
    "PrometheusHarnessError",
    "PrometheusServer",
    "ReceivedRequest",
    "Reply",
    "Series",
    "Timeline",
    "bool_gauge",
    "counter",
    "fake_prometheus",
    "find_binary",
    "free_port",
    "histogram",
    "low_traffic",
    "openmetrics",
    "outage",
    "prometheus_factory",
    "requests",
    "write_blocks",
]

MetricType = Literal["counter", "gauge", "histogram", "unknown"]
Rate = int | Fraction

# The design's default scrape interval (SLA_SCRAPE_INTERVAL_SECONDS).
DEFAULT_STEP_SECONDS = 60

# Starting Prometheus over a month of blocks takes about a second here; the bound
# is generous for a loaded CI machine and still ends a hung start.
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
PROMTOOL_TIMEOUT_SECONDS = 300.0


class PrometheusHarnessError(RuntimeError):
    """The harness could not prepare or start Prometheus; the message says why."""


# Series and their text ----------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """The sample grid: every ``step`` seconds from ``start`` to ``end``, inclusive."""

    start: datetime
    end: datetime
    step: int = DEFAULT_STEP_SECONDS

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("timeline bounds must be time-zone aware")
        if self.end < self.start or self.step <= 0:
            raise ValueError("a timeline needs start <= end and a positive step")

    def timestamps(self) -> range:
        """Unix seconds of every sample."""
        first, last = int(self.start.timestamp()), int(self.end.timestamp())
        return range(first, last + 1, self.step)


@dataclass(frozen=True)
class Phase:
    """A period ``(start, end]`` of samples that differ from the steady state.

    Set the fields that change: ``per_step`` (traffic), ``error_ratio`` (for
    ``requests``), ``buckets`` (for ``histogram``).
    """

    start: datetime
    end: datetime
    per_step: Rate | None = None
    error_ratio: Fraction | None = None
    buckets: Sequence[tuple[str, Fraction]] | None = None

    def covers(self, timestamp: int) -> bool:
        return self.start.timestamp() < timestamp <= self.end.timestamp()


def outage(start: datetime, end: datetime, *, error_ratio: Fraction) -> Phase:
    """A period with a higher error rate."""
    return Phase(start, end, error_ratio=error_ratio)


def low_traffic(start: datetime, end: datetime, *, per_step: Rate) -> Phase:
    """A period with less traffic, e.g. ``Fraction(1, 10)``: one event in 10 steps."""
    return Phase(start, end, per_step=per_step)


@dataclass(frozen=True)
class Series:
    """One series: its samples as (unix seconds, value), in time order."""

    name: str
    labels: Mapping[str, str]
    samples: tuple[tuple[int, float], ...]
    metric_type: MetricType = "unknown"
    family: str = ""

    def family_name(self) -> str:
        return self.family or self.name


def _phase_at(phases: Sequence[Phase], timestamp: int) -> Phase | None:
    # The last phase listed wins where phases overlap.
    for phase in reversed(phases):
        if phase.covers(timestamp):
            return phase
    return None


def _in_gap(gaps: Sequence[tuple[datetime, datetime]], timestamp: int) -> bool:
    return any(start.timestamp() <= timestamp < end.timestamp() for start, end in gaps)


def _step_counts(
    timeline: Timeline, per_step: Callable[[int], Rate]
) -> list[tuple[int, int]]:
    """(timestamp, whole events in the step ending there); 0 at the first sample."""
    running, counted = Fraction(0), 0
    steps: list[tuple[int, int]] = []
    for index, timestamp in enumerate(timeline.timestamps()):
        if index:
            running += per_step(timestamp)
        new = math.floor(running) - counted
        counted += new
        steps.append((timestamp, new))
    return steps


def _cumulative(
    steps: Sequence[tuple[int, Fraction]],
    *,
    resets: Sequence[datetime],
    gaps: Sequence[tuple[datetime, datetime]],
) -> tuple[tuple[int, float], ...]:
    """Counter samples from exact per-step increments: floors of the running total.

    A reset restarts the counter at the step it falls in, so the first sample after
    it holds only that step's events, as a restarted process would report.
    """
    # Whole numbers over one common denominator: a month of Fraction sums would
    # take seconds, integer sums take milliseconds.
    denominator = math.lcm(1, *(increment.denominator for _, increment in steps))
    reset_times = [reset.timestamp() for reset in resets]
    gap_times = [(start.timestamp(), end.timestamp()) for start, end in gaps]
    running, base = 0, 0
    samples: list[tuple[int, float]] = []
    previous: int | None = None
    for timestamp, increment in steps:
        if previous is not None and any(
            previous < reset <= timestamp for reset in reset_times
        ):
            base = running // denominator
        running += increment.numerator * (denominator // increment.denominator)
        previous = timestamp
        if not any(start <= timestamp < end for start, end in gap_times):
            samples.append((timestamp, running // denominator - base))
    return tuple(samples)


def counter(
    name: str,
    *,
    timeline: Timeline,
    per_step: Rate | Callable[[int], Rate],
    labels: Mapping[str, str] | None = None,
    resets: Sequence[datetime] = (),
    gaps: Sequence[tuple[datetime, datetime]] = (),
) -> Series:
    """A counter growing by ``per_step``: a number, or a function of sample time."""
    rate = per_step if callable(per_step) else (lambda _: per_step)
    steps = [(t, Fraction(n)) for t, n in _step_counts(timeline, rate)]
    return Series(
        name,
        dict(labels or {}),
        _cumulative(steps, resets=resets, gaps=gaps),
        "counter",
        name.removesuffix("_total"),
    )


def requests(
    name: str = "http_requests_total",
    *,
    timeline: Timeline,
    per_step: Rate,
    error_ratio: Fraction,
    labels: Mapping[str, str] | None = None,
    phases: Sequence[Phase] = (),
    resets: Sequence[datetime] = (),
    gaps: Sequence[tuple[datetime, datetime]] = (),
    code_label: str = "code",
    good_code: str = "200",
    bad_code: str = "500",
) -> list[Series]:
    """Two counters, good (``code="200"``) and bad (``code="500"``) requests.

    Their sum is the total. Each step's new requests are whole; errors are the
    floor of the running total of ``new requests × error ratio``, so the good count
    never falls.
    """

    def traffic(timestamp: int) -> Rate:
        phase = _phase_at(phases, timestamp)
        return per_step if phase is None or phase.per_step is None else phase.per_step

    def ratio(timestamp: int) -> Fraction:
        phase = _phase_at(phases, timestamp)
        if phase is None or phase.error_ratio is None:
            return error_ratio
        return phase.error_ratio

    total_steps = _step_counts(timeline, traffic)
    bad_steps = [(t, new * ratio(t)) for t, new in total_steps]
    total = _cumulative(
        [(t, Fraction(new)) for t, new in total_steps], resets=resets, gaps=gaps
    )
    bad = _cumulative(bad_steps, resets=resets, gaps=gaps)
    good = tuple(
        (t, all_count - bad_count)
        for (t, all_count), (_, bad_count) in zip(total, bad, strict=True)
    )
    family = name.removesuffix("_total")
    base = dict(labels or {})
    return [
        Series(name, {**base, code_label: good_code}, good, "counter", family),
        Series(name, {**base, code_label: bad_code}, bad, "counter", family),
    ]


def histogram(
    name: str,
    *,
    timeline: Timeline,
    per_step: Rate,
    buckets: Sequence[tuple[str, Fraction]],
    labels: Mapping[str, str] | None = None,
    phases: Sequence[Phase] = (),
    gaps: Sequence[tuple[datetime, datetime]] = (),
    mean_seconds: float = 0.1,
) -> list[Series]:
    """A histogram's ``_bucket``, ``_count`` and ``_sum`` series.

    ``buckets`` gives each bound exactly as it is to be written (``"1.0"``, ``"1"``)
    with the share of observations at or under it; ``+Inf`` (share 1) is added.
    A phase's ``buckets`` replace the shares while it lasts (a slow period).
    """

    def traffic(timestamp: int) -> Rate:
        phase = _phase_at(phases, timestamp)
        return per_step if phase is None or phase.per_step is None else phase.per_step

    def shares(timestamp: int) -> dict[str, Fraction]:
        phase = _phase_at(phases, timestamp)
        chosen = buckets if phase is None or phase.buckets is None else phase.buckets
        return dict(chosen)

    counts = _step_counts(timeline, traffic)
    base = dict(labels or {})
    series = [
        Series(
            f"{name}_bucket",
            {**base, "le": bound},
            _cumulative(
                [(t, new * shares(t).get(bound, Fraction(0))) for t, new in counts],
                resets=(),
                gaps=gaps,
            ),
            "histogram",
            name,
        )
        for bound, _ in buckets
    ]
    observed = _cumulative(
        [(t, Fraction(new)) for t, new in counts], resets=(), gaps=gaps
    )
    series.append(
        Series(f"{name}_bucket", {**base, "le": "+Inf"}, observed, "histogram", name)
    )
    series.append(Series(f"{name}_count", base, observed, "histogram", name))
    summed = tuple((t, count * mean_seconds) for t, count in observed)
    series.append(Series(f"{name}_sum", base, summed, "histogram", name))
    return series


def bool_gauge(
    name: str,
    *,
    timeline: Timeline,
    labels: Mapping[str, str] | None = None,
    down: Sequence[tuple[datetime, datetime]] = (),
    gaps: Sequence[tuple[datetime, datetime]] = (),
) -> Series:
    """A 0/1 gauge: 0 at samples in ``[start, end)`` of a ``down`` period, else 1."""
    samples = tuple(
        (t, 0 if _in_gap(down, t) else 1)
        for t in timeline.timestamps()
        if not _in_gap(gaps, t)
    )
    return Series(name, dict(labels or {}), samples, "gauge")


def _flatten(series: Iterable[Series | Iterable[Series]]) -> list[Series]:
    flat: list[Series] = []
    for item in series:
        if isinstance(item, Series):
            flat.append(item)
        else:
            flat.extend(item)
    return flat


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _series_lines(series: Series) -> Iterator[str]:
    labels = ",".join(
        f'{key}="{_escape_label(value)}"' for key, value in series.labels.items()
    )
    prefix = f"{series.name}{{{labels}}}" if labels else series.name
    for timestamp, value in series.samples:
        yield f"{prefix} {_format_value(value)} {timestamp}"


def openmetrics(series: Iterable[Series | Iterable[Series]]) -> str:
    """OpenMetrics text for the series, grouped by metric family, ending in # EOF."""
    families: dict[str, list[Series]] = {}
    for item in _flatten(series):
        families.setdefault(item.family_name(), []).append(item)
    lines: list[str] = []
    for family, members in families.items():
        lines.append(f"# TYPE {family} {members[0].metric_type}")
        for member in members:
            lines.extend(_series_lines(member))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


# Binaries, blocks and the server ------------------------------------------------


def find_binary(name: str) -> str:
    """The path of ``name`` on PATH, or an error saying what to install."""
    path = shutil.which(name)
    if path is None:
        raise PrometheusHarnessError(
            f"{name!r} is not on PATH; install Debian's 'prometheus' package "
            "(it ships prometheus and promtool) to run these tests"
        )
    return path


def write_blocks(text: str, *, data_dir: Path, work_dir: Path) -> None:
    """Write OpenMetrics ``text`` as TSDB blocks into ``data_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / "history.om"
    source.write_text(text, encoding="utf-8")
    finished = create_blocks(
        find_binary("promtool"), source, data_dir, timeout=PROMTOOL_TIMEOUT_SECONDS
    )
    if finished.returncode != 0:
        raise PrometheusHarnessError(
            f"promtool failed ({finished.returncode}): {finished.stderr.strip()}"
        )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config_text(
    *, scrape_configs: Sequence[Mapping[str, Any]], rule_files: Sequence[Path]
) -> str:
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": f"{DEFAULT_STEP_SECONDS}s",
            "evaluation_interval": f"{DEFAULT_STEP_SECONDS}s",
        },
        "scrape_configs": [dict(scrape) for scrape in scrape_configs],
    }
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class PrometheusServer:
    """A running ``prometheus`` on 127.0.0.1; ``stop`` ends it."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls,
        *,
        data_dir: Path,
        work_dir: Path,
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        rule_files: Sequence[Path] = (),
        enable_lifecycle: bool = False,
    ) -> PrometheusServer:
        binary = find_binary("prometheus")
        config = work_dir / "prometheus.yml"
        config.write_text(
            _config_text(scrape_configs=scrape_configs, rule_files=rule_files)
        )
        # Another process can take the probed port before Prometheus binds it;
        # a couple of fresh ports settle that race.
        for _ in range(3):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            command = [
                binary,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.external-url={url}",
                f"--storage.tsdb.path={data_dir}",
                "--storage.tsdb.retention.time=400d",
                "--log.level=warn",
            ]
            if enable_lifecycle:
                command.append("--web.enable-lifecycle")
            log_path = work_dir / f"prometheus-{port}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, cwd=work_dir
                )
            server = cls(url, process, log_path)
            if server._wait_ready():
                return server
            server.stop()
            if b"address already in use" not in log_path.read_bytes():
                break
        raise PrometheusHarnessError(
            f"prometheus did not become ready at {url}; its log:\n{server.log_tail()}"
        )

    def _wait_ready(self) -> bool:
        # No proxies: the harness only ever talks to the loopback address.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                opener.open(f"{self.url}/-/ready", timeout=1) as answer,
            ):
                if answer.status == 200:
                    return True
            time.sleep(0.05)
        return False

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def stop(self) -> None:
        """Terminate, then kill after a timeout; safe to call twice."""
        stop_process(self.process, timeout=STOP_TIMEOUT_SECONDS)


@dataclass
class PrometheusFactory:
    """Starts Prometheus servers over given history; one per distinct request."""

    base_dir: Path
    servers: dict[str, PrometheusServer] = field(default_factory=dict)

    def __call__(
        self,
        *series: Series | Iterable[Series],
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        rule_files: Sequence[Path] = (),
        enable_lifecycle: bool = False,
    ) -> str:
        """Start (or reuse) a Prometheus holding ``series``; return its base URL."""
        text = openmetrics(series)
        settings = json.dumps(
            [list(map(dict, scrape_configs)), list(map(str, rule_files))],
            sort_keys=True,
        )
        key = hashlib.sha256(
            f"{text}\0{settings}\0{enable_lifecycle}".encode()
        ).hexdigest()[:16]
        if key not in self.servers:
            self.servers[key] = self._start(
                key,
                text,
                scrape_configs=scrape_configs,
                rule_files=rule_files,
                enable_lifecycle=enable_lifecycle,
            )
        return self.servers[key].url

    def _start(
        self,
        key: str,
        text: str,
        *,
        scrape_configs: Sequence[Mapping[str, Any]],
        rule_files: Sequence[Path],
        enable_lifecycle: bool,
    ) -> PrometheusServer:
        work_dir = self.base_dir / key
        data_dir = work_dir / "data"
        data_dir.mkdir(parents=True)
        if text.strip() != "# EOF":
            write_blocks(text, data_dir=data_dir, work_dir=work_dir)
        return PrometheusServer.start(
            data_dir=data_dir,
            work_dir=work_dir,
            scrape_configs=scrape_configs,
            rule_files=rule_files,
            enable_lifecycle=enable_lifecycle,
        )

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


@pytest.fixture(scope="session")
def prometheus_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrometheusFactory]:
    """Call it with series to get the URL of a Prometheus holding them."""
    # Fail at once, before any test builds data, when the binaries are missing.
    find_binary("prometheus")
    find_binary("promtool")
    factory = PrometheusFactory(tmp_path_factory.mktemp("prometheus"))
    try:
        yield factory
    finally:
        factory.stop_all()


# The fake, for failure modes only ------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, body (JSON unless told), and a delay before
    answering."""

    status: int = 200
    body: Mapping[str, Any] | str = field(
        default_factory=lambda: {
            "status": "success",
            "data": {"resultType": "vector", "result": []},
        }
    )
    delay: float = 0.0
    content_type: str = "application/json"


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class FakePrometheus:
    """An HTTP server on 127.0.0.1 answering with ``replies`` in turn.

    The last reply repeats once the others are used. Every request is recorded in
    ``received``, and ``max_in_flight`` is the most it was answering at once.
    Delays end early when the server stops, so no thread outlives it.
    """

    def __init__(self, replies: Sequence[Reply]) -> None:
        if not replies:
            raise ValueError("script at least one reply")
        self.replies = list(replies)
        self.received: list[ReceivedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), self._handler_class()
        )
        self._server.daemon_threads = True
        self._server.block_on_close = False
        # serve_forever notices shutdown at its poll interval: the default half
        # second would be added to every test's teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakePrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=STOP_TIMEOUT_SECONDS)

    def _next_reply(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.received.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            index = min(len(self.received), len(self.replies)) - 1
            return self.replies[index]

    def _finished(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received = ReceivedRequest(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                reply = fake._next_reply(received)
                try:
                    self._reply(reply)
                finally:
                    fake._finished()

            def _reply(self, reply: Reply) -> None:
                if reply.delay and fake._stopping.wait(reply.delay):
                    return
                body = (
                    reply.body
                    if isinstance(reply.body, str)
                    else json.dumps(reply.body)
                ).encode()
                with contextlib.suppress(OSError):
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # Quiet: pytest shows the test's own output on failure.
                pass

        return Handler


@pytest.fixture
def fake_prometheus() -> Iterator[Callable[..., FakePrometheus]]:
    """Call it with replies to get a started FakePrometheus; all stop at teardown."""
    started: list[FakePrometheus] = []

    def start(*replies: Reply) -> FakePrometheus:
        fake = FakePrometheus(replies).__enter__()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.__exit__(None, None, None)
