"""What one benchmarked command cost: wall time, peak memory, Prometheus' work.

Peak memory is the child's own ``ru_maxrss``, read with ``os.wait4`` on its pid, so
neither this process nor another child counts. Prometheus' work comes from its
query log (``global.query_log_file``), which Prometheus 2.42 writes for every query
it answers, whoever asks, with ``stats.samples.totalQueryableSamples``: the same
count for ``sla eval`` in a subprocess, for slo-generator (which asks for no
stats), and for the in-process client (whose ``ClientStats.samples`` reads that
same field from the answers).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml
from tests.support.prometheus import PrometheusServer

# Polling for the child's end; a tenth of the shortest run measured is below 0.05 s.
POLL_SECONDS: Final = 0.01
STOP_SECONDS: Final = 10.0
KIB: Final = 1024


class CommandFailed(RuntimeError):
    """A benchmarked command failed or overran; the message holds its output."""


@dataclass(frozen=True)
class PrometheusWork:
    requests: int = 0
    samples: int = 0
    seconds: float = 0.0
    """Sum of the queries' ``execTotalTime``: Prometheus' own time on them."""


@dataclass(frozen=True)
class Cost:
    seconds: float
    peak_rss_bytes: int
    prometheus: PrometheusWork


@dataclass(frozen=True)
class Finished:
    cost: Cost
    stdout: str
    stderr: str


class QueryLog:
    """Prometheus' query log, turned on with a configuration reload."""

    def __init__(self, server: PrometheusServer, path: Path) -> None:
        self.path = path
        # The harness writes its own configuration file; add the log to it.
        config_path = server.log_path.parent / "prometheus.yml"
        config = yaml.safe_load(config_path.read_text())
        config["global"]["query_log_file"] = str(path)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        _reload(server)
        if not path.exists():
            raise CommandFailed(f"Prometheus did not open its query log {path}")

    def mark(self) -> int:
        return self.path.stat().st_size

    def since(self, mark: int) -> PrometheusWork:
        with self.path.open("rb") as log:
            log.seek(mark)
            lines = log.read().splitlines()
        samples, seconds = 0, 0.0
        for line in lines:
            stats = json.loads(line).get("stats", {})
            samples += stats.get("samples", {}).get("totalQueryableSamples", 0)
            seconds += stats.get("timings", {}).get("execTotalTime", 0.0)
        return PrometheusWork(len(lines), samples, seconds)


def _reload(server: PrometheusServer) -> None:
    # No proxies: the only address asked is Prometheus on the loopback interface.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"{server.url}/-/reload", method="POST")
    with opener.open(request, timeout=30) as answer:
        if answer.status != 200:
            raise CommandFailed(f"Prometheus refused to reload: HTTP {answer.status}")


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment without proxies (all traffic stays on 127.0.0.1), plus
    ``extra``."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.lower().endswith("_proxy")
    }
    environment["NO_PROXY"] = environment["no_proxy"] = "127.0.0.1,localhost"
    environment.update(extra)
    return environment


def run_measured(
    command: Sequence[str],
    *,
    query_log: QueryLog,
    work_dir: Path,
    environment: Mapping[str, str],
    timeout: float,
    label: str,
) -> Finished:
    """Run ``command`` to its end and measure it; raise when it fails."""
    stdout_path, stderr_path = work_dir / f"{label}.out", work_dir / f"{label}.err"
    mark = query_log.mark()
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            stdout=stdout,
            stderr=stderr,
            env=dict(environment),
            cwd=work_dir,
        )
        status, usage = _wait(process, deadline=started + timeout)
        seconds = time.perf_counter() - started
    stdout_text = stdout_path.read_text(errors="replace")
    stderr_text = stderr_path.read_text(errors="replace")
    if status is None:
        raise CommandFailed(f"{label} ran longer than {timeout:.0f}s:\n{stderr_text}")
    if status != 0:
        raise CommandFailed(
            f"{label} exited with {status}:\n{stderr_text[-4000:]}{stdout_text[-2000:]}"
        )
    # Linux reports ru_maxrss in KiB.
    cost = Cost(seconds, usage.ru_maxrss * KIB, query_log.since(mark))
    return Finished(cost, stdout_text, stderr_text)


def _wait(
    process: subprocess.Popen[bytes], *, deadline: float
) -> tuple[int | None, os.struct_rusage]:
    """Exit code and resource usage; (None, usage) when it overran and was ended."""
    try:
        while time.perf_counter() < deadline:
            pid, wait_status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                # Reaped here, so Popen must not wait for it again.
                process.returncode = os.waitstatus_to_exitcode(wait_status)
                return process.returncode, usage
            time.sleep(POLL_SECONDS)
    except BaseException:
        _end(process)
        raise
    return None, _end(process)


def _end(process: subprocess.Popen[bytes]) -> os.struct_rusage:
    """Terminate, kill if it is still there after STOP_SECONDS, and reap."""
    process.terminate()
    end = time.perf_counter() + STOP_SECONDS
    while time.perf_counter() < end:
        pid, wait_status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            process.returncode = os.waitstatus_to_exitcode(wait_status)
            return usage
        time.sleep(POLL_SECONDS)
    process.kill()
    _, wait_status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    return usage
