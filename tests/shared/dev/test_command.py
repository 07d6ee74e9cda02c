"""The ``sla dev`` console as a user runs it: a process of its own, output piped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest

from tests.support.servers import free_port

pytestmark = pytest.mark.slow

REPOSITORY: Final = Path(__file__).resolve().parents[3]
CHECKS_APART: Final = 10.0
"""sla.dev.datasources.CHECK_SECONDS: the console asks its datasources this often."""
START_SECONDS: Final = 60.0
STOP_SECONDS: Final = 30.0

SLO: Final = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  objective: 99
  window: 30d
  indicator:
    ratio:
      bad: {metric: 'http_requests_total{code="500"}'}
      total: {metric: http_requests_total}
"""


def wait_for(probe: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def test_unreachable_prometheus_is_told_once_while_every_tick_fails(
    tmp_path: Path, own_database_url: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO)
    state = tmp_path / "state"
    out, err = tmp_path / "sla-dev.out", tmp_path / "sla-dev.err"
    command = [
        sys.executable, "-m", "sla.cli", "dev",
        "--slos", str(slo),
        "--prometheus", url,
        "--state-dir", str(state),
        "--minute-seconds", "1",
        "--broker-port", str(free_port()),
        "--alertmanager-port", str(free_port()),
    ]  # fmt: skip
    environment = {**os.environ, "SLA_DATABASE_URL": own_database_url}
    calculator_log = state / "logs" / "sli-calculator.log"

    def failed_ticks() -> int:
        if not calculator_log.exists():
            return 0
        return calculator_log.read_text().count('"outcome":"failed"')

    with out.open("wb") as stdout, err.open("wb") as stderr:
        dev = subprocess.Popen(
            command, cwd=REPOSITORY, env=environment, stdout=stdout, stderr=stderr
        )
    try:
        wait_for(
            lambda: "enforcement" in out.read_text(),
            timeout=START_SECONDS,
            what=f"sla dev to start; stderr:\n{err.read_text()}",
        )
        # The console checks at once, and again CHECKS_APART later: a second line
        # would come by then.
        second_check = time.monotonic() + CHECKS_APART + 1
        wait_for(lambda: failed_ticks() > 0, timeout=START_SECONDS, what="a tick")
        time.sleep(max(second_check - time.monotonic(), 0))
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(STOP_SECONDS)

    told = [line for line in out.read_text().splitlines() if "datasource" in line]
    assert told == [
        f"datasource {url} unusable: ConnectError: All connection attempts failed; "
        "the SLOs it serves are not evaluated until it answers"
    ]
    assert failed_ticks() >= 3
