"""The demo kit behind ``sla dev --demo``: something real to measure, on loopback.

- :class:`DemoService`, a small HTTP service on 127.0.0.1 exporting
  ``http_requests_total{code}`` and the histogram ``http_request_duration_seconds``
  on ``/metrics``; ``POST /control`` makes a share of its answers fail (500) and a
  share slow (an added delay), exactly and deterministically: at an error ratio
  of 0.15 every hundred requests hold fifteen errors.
- :class:`LoadGenerator`, calling the service at a steady rate with a bounded
  number of requests in flight; it stops by itself after a duration or a count,
  and refuses any address but the loopback.
- :class:`PrometheusProcess` and :class:`AlertmanagerProcess`, Debian's
  ``prometheus`` and ``prometheus-alertmanager`` on 127.0.0.1 (Alertmanager with
  no cluster listener). Prometheus scrapes the service and itself, loads the rules
  of ``sla rules -o rules`` and alerts into Alertmanager, whose webhook points at
  webhook-intake with the bearer token read from the token file.
- :func:`demo_specs`: two SLOs of the service (availability, latency) over a one
  hour window with burn-rate rows of a minute or a few, and a policy freezing the
  Deployments labelled ``app=demo`` while a page alert fires or the budget is
  nearly spent, lifted a minute after recovery.

Why a one-hour window with an hour of written history. A page row of factor
``f`` over a long window ``L`` fires only once at least ``f × L / W`` of a window
``W`` is spent, and more while the window is not yet full of traffic: with
``W = 10m`` and a 5× row over 2m the budget is gone the moment the page fires,
and a freeze could lift only after the failure has left the window. So the
service's healthy past is written into Prometheus' storage with ``promtool``
before it starts (:func:`history_text`), the one-hour window is full from the
first evaluation, and a page that fires costs about a third of the budget: the
freeze lifts a minute after the service recovers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import http.server
import json
import math
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from rich.console import Console

from sla.dev.processes import log_tail, stop_process
from sla.dev.system import DevOptions, ensure_token
from sla.errors import SLAError

__all__ = [
    "BUCKETS",
    "DEMO_JOB",
    "DEMO_NAMESPACE",
    "AlertmanagerProcess",
    "DemoError",
    "DemoService",
    "Faults",
    "LoadGenerator",
    "LoadStats",
    "PrometheusProcess",
    "demo_kit",
    "demo_rules",
    "demo_specs",
    "history_text",
    "write_history",
]

DEMO_NAMESPACE: Final = "demo"
DEMO_JOB: Final = "demo"
DEMO_LABELS: Final = {"app": "demo"}

BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds of the latency histogram; 0.25 is the latency SLO's threshold."""
LATENCY_THRESHOLD_SECONDS: Final = 0.25

SCRAPE_INTERVAL_SECONDS: Final = 2
"""Scrapes, rule evaluations and the engine's window floor (two of them: 4 s)."""
DEMO_RATE: Final = 20.0
"""Requests per second of the demo's load: 1200 a minute, so a 1m window of a
15 % failure holds 180 errors, far above counting noise."""
HISTORY_MINUTES: Final = 65
"""Healthy past written before Prometheus starts: the 1h window and a margin."""

MAX_RATE: Final = 200.0
"""The load generator's ceiling, whatever it is asked: a demo, not a benchmark."""
MAX_IN_FLIGHT: Final = 32
MAX_LOAD_SECONDS: Final = 4 * 3600.0
DEMO_LOAD_SECONDS: Final = 3600.0
REQUEST_TIMEOUT_SECONDS: Final = 10.0
MAX_ADDED_LATENCY_SECONDS: Final = 5.0

START_TIMEOUT_SECONDS: Final = 30.0
STOP_TIMEOUT_SECONDS: Final = 10.0
PROMTOOL_TIMEOUT_SECONDS: Final = 120.0
# 744h is 31 days: a month of history fits in one or two blocks, written in
# seconds. Without it promtool writes two-hour blocks and re-reads its input for
# each (the flag is hidden from --help in 2.42 but accepted).
MAX_BLOCK_DURATION: Final = "744h"

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost"})


class DemoError(SLAError):
    """A piece of the demo could not start; the message says which and why."""


# -- the service ------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """What the service does wrong: shares of requests failed and slowed."""

    error_ratio: float = 0.0
    slow_ratio: float = 0.0
    latency_seconds: float = 0.0

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Faults:
        """Fields left out are 0; ``latency_seconds`` alone slows every request."""
        unknown = set(body) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        latency = _number(body, "latency_seconds", 0.0, MAX_ADDED_LATENCY_SECONDS)
        default_slow = 1.0 if latency and "slow_ratio" not in body else 0.0
        return cls(
            error_ratio=_number(body, "error_ratio", 0.0, 1.0),
            slow_ratio=_number(body, "slow_ratio", 0.0, 1.0, default=default_slow),
            latency_seconds=latency,
        )


def _number(
    body: Mapping[str, Any], name: str, low: float, high: float, default: float = 0.0
) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return float(value)


class _Shares:
    """Picks exactly ``ratio`` of the calls, spread evenly: a running credit
    crosses 1 on the calls to pick, so 0.15 picks 15 of every 100."""

    def __init__(self) -> None:
        self.credit = 0.0

    def pick(self, ratio: float) -> bool:
        self.credit += ratio
        if self.credit >= 1.0 - 1e-9:
            self.credit -= 1.0
            return True
        return False


class DemoService:
    """The service the demo SLOs measure, in a thread, on 127.0.0.1."""

    def __init__(self, *, port: int = 0) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "Requests answered, by status code",
            ["code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer a request",
            buckets=BUCKETS,
            registry=self.registry,
        )
        # Both codes exist from the start: no errors reads 0, not an absent series.
        for code in ("200", "500"):
            self.requests.labels(code=code)
        self._faults = Faults()
        self._errors = _Shares()
        self._slow = _Shares()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", port), _handler(self)
        )
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        """``host:port`` as Prometheus' static_configs and ``instance`` write it."""
        return f"127.0.0.1:{self.port}"

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._errors, self._slow = _Shares(), _Shares()

    def start(self) -> DemoService:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=STOP_TIMEOUT_SECONDS)
        self._server.server_close()

    def __enter__(self) -> DemoService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_request(self) -> int:
        """Answer one request as the faults say; the status code."""
        started = time.monotonic()
        with self._lock:
            faults = self._faults
            failed = self._errors.pick(faults.error_ratio)
            slow = self._slow.pick(faults.slow_ratio)
        if slow and faults.latency_seconds:
            time.sleep(faults.latency_seconds)
        code = 500 if failed else 200
        self.requests.labels(code=str(code)).inc()
        self.duration.observe(time.monotonic() - started)
        return code

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)


def _handler(service: DemoService) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                self._send(200, service.metrics_text(), "text/plain; version=0.0.4")
            elif path == "/control":
                self._json(200, dataclasses.asdict(service.faults))
            else:
                code = service.serve_request()
                self._send(code, b"ok\n" if code == 200 else b"failed\n")

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/control":
                self._json(404, {"error": "POST /control only"})
                return
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("send a JSON object")
                faults = Faults.from_json(body)
            except ValueError as error:
                self._json(400, {"error": str(error)})
                return
            service.set_faults(faults)
            self._json(200, dataclasses.asdict(faults))

        def _json(self, status: int, body: Mapping[str, Any]) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(
            self, status: int, body: bytes, content_type: str = "text/plain"
        ) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Quiet: twenty requests a second would drown every other line.
            pass

    return Handler


# -- the load -----------------------------------------------------------------------


@dataclass
class LoadStats:
    sent: int = 0
    answered: dict[int, int] = field(default_factory=dict)
    failed: int = 0
    """Requests with no answer at all (refused, timed out)."""
    skipped: int = 0
    """Slots given up because every request in flight was still waiting."""

    @property
    def total_answered(self) -> int:
        return sum(self.answered.values())


class LoadGenerator:
    """GETs ``url`` at ``rate`` per second until ``duration`` or ``max_requests``.

    At most ``in_flight`` requests wait at once; a slot that finds them all busy is
    skipped, never queued, so a slow service gets less load, not a backlog. Only
    loopback URLs are accepted.
    """

    def __init__(
        self,
        url: str,
        *,
        rate: float,
        duration: float,
        max_requests: int | None = None,
        in_flight: int = 8,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(f"the load goes to http://127.0.0.1 only, not {url!r}")
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"rate must be above 0 and at most {MAX_RATE:g}/s")
        if not 0 < duration <= MAX_LOAD_SECONDS:
            raise ValueError(
                f"duration must be above 0 and at most {MAX_LOAD_SECONDS:g}s"
            )
        if not 0 < in_flight <= MAX_IN_FLIGHT:
            raise ValueError(f"in_flight must be between 1 and {MAX_IN_FLIGHT}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.rate = rate
        self.duration = duration
        self.max_requests = max_requests or math.ceil(rate * duration)
        self.stats = LoadStats()
        self._slots = threading.BoundedSemaphore(in_flight)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._workers: set[threading.Thread] = set()
        self._pacer = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LoadGenerator:
        self._pacer.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait for the requests in flight."""
        self._stopping.set()
        if self._pacer.is_alive():
            self._pacer.join(timeout=REQUEST_TIMEOUT_SECONDS)
        for worker in list(self._workers):
            worker.join(timeout=REQUEST_TIMEOUT_SECONDS)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the load to end by itself; True when it has."""
        self._pacer.join(timeout)
        return not self._pacer.is_alive()

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        started = time.monotonic()
        deadline = started + self.duration
        for index in range(self.max_requests):
            # Slots on a fixed grid: a late slot does not shift the ones after it.
            due = started + index / self.rate
            if due >= deadline or self._stopping.wait(max(0.0, due - time.monotonic())):
                break
            if not self._slots.acquire(blocking=False):
                with self._lock:
                    self.stats.skipped += 1
                continue
            worker = threading.Thread(target=self._one, daemon=True)
            with self._lock:
                self.stats.sent += 1
                self._workers.add(worker)
            worker.start()

    def _one(self) -> None:
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=REQUEST_TIMEOUT_SECONDS
        )
        status: int | None = None
        try:
            connection.request("GET", self.path)
            answer = connection.getresponse()
            answer.read()
            status = answer.status
        except OSError:
            status = None
        finally:
            connection.close()
            self._slots.release()
            with self._lock:
                if status is None:
                    self.stats.failed += 1
                else:
                    answered = self.stats.answered
                    answered[status] = answered.get(status, 0) + 1
                self._workers.discard(threading.current_thread())


# -- history ------------------------------------------------------------------------


def history_text(
    *,
    job: str,
    instance: str,
    end: float,
    minutes: int = HISTORY_MINUTES,
    rate: float = DEMO_RATE,
    step: int = 60,
) -> str:
    """OpenMetrics text of a healthy past: ``rate`` requests a second, all fast
    (in the first bucket) and all answered 200, a sample every ``step`` seconds up
    to ``end`` (unix seconds). Labels are the scrape's: ``job`` and ``instance``.

    The live service restarts its counters at 0; Prometheus reads the drop as a
    counter reset, so increases across the seam stay right.
    """
    last = int(end)
    times = [last - step * k for k in range(minutes * 60 // step, -1, -1)]
    first = times[0]
    target = f'instance="{instance}",job="{job}"'
    lines = ["# TYPE http_requests counter"]
    for code in ("200", "500"):
        for at in times:
            count = rate * (at - first) if code == "200" else 0
            lines.append(
                f'http_requests_total{{code="{code}",{target}}} {count:g} {at}'
            )
    lines.append("# TYPE http_request_duration_seconds histogram")
    name = "http_request_duration_seconds"
    # OpenMetrics keeps a histogram's samples of one time together.
    for at in times:
        count = rate * (at - first)
        for bound in (*BUCKETS, math.inf):
            le = bucket_label(bound)
            lines.append(f'{name}_bucket{{le="{le}",{target}}} {count:g} {at}')
        lines.append(f"{name}_count{{{target}}} {count:g} {at}")
        lines.append(f"{name}_sum{{{target}}} {count * 0.001:g} {at}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def bucket_label(bound: float) -> str:
    """``le`` as prometheus_client writes it: ``0.25``, ``1.0``, ``+Inf``."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def create_blocks(
    promtool: str, source: Path, data_dir: Path, *, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``promtool`` to turn the OpenMetrics file ``source`` into TSDB blocks in
    ``data_dir``; the caller reads the outcome."""
    return subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            f"--max-block-duration={MAX_BLOCK_DURATION}",
            str(source),
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_history(text: str, *, data_dir: Path, work_dir: Path) -> None:
    """Turn OpenMetrics ``text`` into TSDB blocks in ``data_dir`` with promtool."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise DemoError("promtool is not on PATH (Debian's prometheus package)")
    source = work_dir / "history.om"
    source.write_text(text, encoding="utf-8")
    finished = create_blocks(
        promtool, source, data_dir, timeout=PROMTOOL_TIMEOUT_SECONDS
    )
    if finished.returncode != 0:
        raise DemoError(f"promtool could not write the history: {finished.stderr}")


# -- Prometheus and Alertmanager ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class _Process:
    """A server binary on 127.0.0.1: started, waited for, stopped."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def stop(self) -> None:
        """Terminate, then kill after a timeout; safe to call twice."""
        stop_process(self.process, timeout=STOP_TIMEOUT_SECONDS)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        port = int(urlsplit(self.url).port or 0)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(f"{self.name} exited at start:\n{self.log_tail()}")
            if _ready(port):
                return
            time.sleep(0.1)
        self.stop()
        raise DemoError(f"{self.name} was not ready in time:\n{self.log_tail()}")


def _ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/-/ready")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _spawn(name: str, command: Sequence[str], log_path: Path, url: str) -> _Process:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    started = _Process(name, url, process, log_path)
    started.wait_ready()
    return started


def _binary(*names: str, package: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    raise DemoError(f"{names[0]} is not on PATH; install Debian's {package} package")


class PrometheusProcess(_Process):
    """Debian's ``prometheus`` on 127.0.0.1, scraping the given targets and itself."""

    @classmethod
    def start(
        cls,
        work_dir: Path,
        *,
        targets: Mapping[str, Sequence[str]],
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
        scrape_interval: int = SCRAPE_INTERVAL_SECONDS,
        history: str | None = None,
    ) -> PrometheusProcess:
        """``targets``: job name → ``host:port`` list; ``alertmanager``: its URL;
        ``history``: OpenMetrics text written into the storage before the start."""
        binary = _binary("prometheus", package="prometheus")
        data_dir = work_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        if history is not None:
            write_history(history, data_dir=data_dir, work_dir=work_dir)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = work_dir / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                prometheus_config(
                    targets={**targets, "prometheus": [f"127.0.0.1:{port}"]},
                    rule_files=rule_files,
                    alertmanager=alertmanager,
                    scrape_interval=scrape_interval,
                ),
                sort_keys=False,
            )
        )
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url={url}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        process = _spawn("prometheus", command, work_dir / "prometheus.log", url)
        return cls(process.name, process.url, process.process, process.log_path)


def prometheus_config(
    *,
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path],
    alertmanager: str | None,
    scrape_interval: int,
) -> dict[str, Any]:
    interval = f"{scrape_interval}s"
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(hosts)}]}
            for job, hosts in targets.items()
        ],
    }
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    if alertmanager is not None:
        host = urlsplit(alertmanager).netloc
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [host]}]}]
        }
    return config


class AlertmanagerProcess(_Process):
    """``prometheus-alertmanager`` on 127.0.0.1, no cluster port, one webhook."""

    @classmethod
    def start(
        cls, work_dir: Path, *, webhook_url: str, credentials_file: Path
    ) -> AlertmanagerProcess:
        binary = _binary(
            "prometheus-alertmanager",
            "alertmanager",
            package="prometheus-alertmanager",
        )
        work_dir.mkdir(parents=True, exist_ok=True)
        config = work_dir / "alertmanager.yml"
        config.write_text(
            yaml.safe_dump(
                alertmanager_config(webhook_url, credentials_file=credentials_file),
                sort_keys=False,
            )
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.path={work_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url={url}",
            # Empty: no cluster (gossip) listener, which would bind every interface.
            "--cluster.listen-address=",
            "--log.level=info",
        ]
        process = _spawn("alertmanager", command, work_dir / "alertmanager.log", url)
        return cls(process.name, process.url, process.process, process.log_path)


def alertmanager_config(webhook_url: str, *, credentials_file: Path) -> dict[str, Any]:
    """One route to webhook-intake; short timings so a demo sees alerts at once."""
    return {
        "route": {
            "receiver": "sla",
            "group_by": ["alertname", "namespace", "slo", "severity"],
            "group_wait": "1s",
            "group_interval": "5s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "sla",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {
                                "type": "Bearer",
                                "credentials_file": str(credentials_file),
                            }
                        },
                    }
                ],
            }
        ],
    }


# -- SLOs, policy and rules ---------------------------------------------------------


def demo_specs(*, namespace: str = DEMO_NAMESPACE, job: str = DEMO_JOB) -> str:
    """The demo's SLODefinitions and SLAPolicy as YAML (module docstring: why 1h)."""
    rows = [
        {"severity": "page", "longWindow": "2m", "shortWindow": "1m", "factor": 5},
        {"severity": "ticket", "longWindow": "5m", "shortWindow": "2m", "factor": 2},
    ]
    common = {
        "service": "demo",
        "labels": {"team": "demo"},
        "objective": 99,
        "window": "1h",
        "alerting": {"rows": rows},
    }
    availability = {
        **common,
        "description": "Requests answered without a server error.",
        "indicator": {
            "ratio": {
                "bad": {"metric": f'http_requests_total{{job="{job}",code=~"5.."}}'},
                "total": {"metric": f'http_requests_total{{job="{job}"}}'},
            }
        },
    }
    latency = {
        **common,
        "description": "Requests answered within 250 ms.",
        "indicator": {
            "latency": {
                "histogram": f'http_request_duration_seconds{{job="{job}"}}',
                "threshold": LATENCY_THRESHOLD_SECONDS,
            }
        },
    }
    policy = {
        "slos": {"selector": {"matchLabels": dict(DEMO_LABELS)}},
        "freeze": {
            "when": [{"alertFiring": "page"}, {"budgetRemainingBelow": 10}],
            "match": "any",
        },
        "lift": {"budgetRemainingAbove": 25, "holdFor": "1m"},
        "scope": {
            "selector": {"matchLabels": dict(DEMO_LABELS)},
            "kinds": ["Deployment"],
        },
        "mode": "annotate",
    }
    documents = [
        _resource("SLODefinition", "demo-availability", namespace, availability),
        _resource("SLODefinition", "demo-latency", namespace, latency),
        _resource("SLAPolicy", "demo-freeze", namespace, policy),
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


def _resource(
    kind: str, name: str, namespace: str, spec: Mapping[str, Any]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if kind == "SLODefinition":
        metadata["labels"] = dict(DEMO_LABELS)
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": dict(spec),
    }


def demo_rules(
    paths: Sequence[Path], *, scrape_interval: int = SCRAPE_INTERVAL_SECONDS
) -> str:
    """What ``sla rules PATH… -o rules --scrape-interval N`` writes."""
    from sla.model.slo import SLODefinition
    from sla.runtime.rules_command import render
    from sla.services.rules import build_rules
    from sla.specs import load_paths

    loaded = load_paths(paths, scrape_interval=scrape_interval)
    if not loaded.ok:
        problems = "; ".join(finding.describe() for finding in loaded.errors)
        raise DemoError(f"the demo SLOs do not load: {problems}")
    slos = [obj for obj in loaded.objects if isinstance(obj, SLODefinition)]
    result = build_rules(slos, scrape_interval=scrape_interval)
    if not result.ok:
        problems = "; ".join(problem.describe() for problem in result.errors)
        raise DemoError(f"no rules for the demo SLOs: {problems}")
    return render(result, output="rules")


# -- sla dev --demo -----------------------------------------------------------------


@contextlib.contextmanager
def demo_kit(options: DevOptions, *, console: Console) -> Iterator[DevOptions]:
    """Start the demo around ``sla dev``; yields the options to start it with.

    The service and its load always run; Prometheus and Alertmanager when they are
    installed (said clearly when not). Everything stops when the block ends, also
    on failure.
    """
    work_dir = options.state_dir / "demo"
    with contextlib.ExitStack() as stack:
        work_dir.mkdir(parents=True, exist_ok=True)
        specs = work_dir / "slos.yaml"
        specs.write_text(demo_specs())
        service = stack.enter_context(DemoService())
        load = stack.enter_context(
            LoadGenerator(service.url + "/", rate=DEMO_RATE, duration=DEMO_LOAD_SECONDS)
        )
        stack.enter_context(_scrape_interval_setting(console))
        prometheus_url = _start_monitoring(options, service, specs, stack, console)
        _announce(console, service, load, prometheus_url)
        yield dataclasses.replace(
            options,
            prometheus_url=prometheus_url or options.prometheus_url,
            slos=[specs, *options.slos],
        )


def _start_monitoring(
    options: DevOptions,
    service: DemoService,
    specs: Path,
    stack: contextlib.ExitStack,
    console: Console,
) -> str | None:
    """Alertmanager (if installed), then Prometheus (if installed); its URL."""
    work_dir = options.state_dir / "demo"
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        _say(
            console,
            "[bold yellow]demo: prometheus is not installed[/] (Debian package "
            "'prometheus'): the service and its load run, but nothing measures "
            "them; budgets stay no_data.",
        )
        return None
    rules = work_dir / "rules.yml"
    rules.write_text(demo_rules([specs]))
    alertmanager = _start_alertmanager(options, work_dir, console)
    if alertmanager is not None:
        stack.callback(alertmanager.stop)
    prometheus_dir = work_dir / "prometheus"
    # A fresh storage each time: the history is written for this start.
    shutil.rmtree(prometheus_dir, ignore_errors=True)
    prometheus_dir.mkdir(parents=True)
    prometheus = PrometheusProcess.start(
        prometheus_dir,
        targets={DEMO_JOB: [service.target]},
        rule_files=[rules],
        alertmanager=alertmanager.url if alertmanager else None,
        history=history_text(job=DEMO_JOB, instance=service.target, end=time.time()),
    )
    stack.callback(prometheus.stop)
    _say(console, f"demo: Prometheus {prometheus.url}  (rules: {rules})")
    if alertmanager is not None:
        _say(console, f"demo: Alertmanager {alertmanager.url}")
    return prometheus.url


def _start_alertmanager(
    options: DevOptions, work_dir: Path, console: Console
) -> AlertmanagerProcess | None:
    if not (shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")):
        _say(
            console,
            "[yellow]demo: prometheus-alertmanager is not installed[/]: alerts stay "
            "in Prometheus; budgets still come from the ticks.",
        )
        return None
    # The file sla dev reads its webhook token from (made here first if need be).
    token_file = options.state_dir / "webhook-token"
    ensure_token(token_file)
    return AlertmanagerProcess.start(
        work_dir / "alertmanager",
        webhook_url=f"http://127.0.0.1:{options.webhook_port}/",
        credentials_file=token_file,
    )


@contextlib.contextmanager
def _scrape_interval_setting(console: Console) -> Iterator[None]:
    """The functions' window floor follows the demo's scrape interval: at the
    default 60 s the 1m short windows would be raised onto their long ones."""
    name = "SLA_SCRAPE_INTERVAL_SECONDS"
    before = os.environ.get(name)
    if before not in (None, str(SCRAPE_INTERVAL_SECONDS)):
        _say(console, f"demo: {name}={before} replaced by {SCRAPE_INTERVAL_SECONDS}")
    os.environ[name] = str(SCRAPE_INTERVAL_SECONDS)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _say(console: Console, text: str) -> None:
    # One line each, however narrow the terminal: the commands are copied whole.
    console.print(text, soft_wrap=True)


def _announce(
    console: Console,
    service: DemoService,
    load: LoadGenerator,
    prometheus_url: str | None,
) -> None:
    _say(console, f"demo: service {service.url}/  metrics {service.url}/metrics")
    _say(
        console,
        f"demo: load {load.rate:g} requests/s for {load.duration / 60:.0f} min "
        "at most, then it stops",
    )
    _say(
        console,
        "demo: make it fail and slow:  curl -X POST "
        f"{service.url}/control -d "
        '\'{"error_ratio": 0.15, "slow_ratio": 0.15, "latency_seconds": 0.5}\'',
    )
    _say(console, f"demo: make it healthy again:  curl -X POST {service.url}/control")
    if prometheus_url:
        _say(console, f"demo: alerts {prometheus_url}/alerts")
