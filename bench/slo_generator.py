"""Google's slo-generator 2.6.0, in a virtual environment of its own, for comparison.

slo-generator's Prometheus backend (``backends/prometheus.py`` in 2.6.0) asks
``prometheus_http_client``, which sends every query with ``time=time.time()``: the
``--timestamp`` option of ``slo-generator compute`` reaches the report, not the
queries. So it always evaluates at the wall clock, and the benchmark's history has
to reach past the moment it runs. Each query is a plain ``requests.get`` without a
session: a new connection per query, as users get it.

Its results are read from its log: ``compute`` logs one line per SLO and
error-budget step (``SLOReport.__str__``), with the SLI in percent, itself from an
SLI rounded to six decimals (``SLOReport.get_sli``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml
from bench.traffic import GOOD_CODE, METRIC, Service

VERSION: Final = "2.6.0"
# 2.6.0's command line imports pkg_resources, which setuptools 81 removes.
REQUIREMENTS: Final = (f"slo-generator[prometheus]=={VERSION}", "setuptools<81")
INSTALL_TIMEOUT_SECONDS: Final = 600.0

GOAL: Final = 0.999


@dataclass(frozen=True)
class Step:
    name: str
    window_seconds: int
    burn_rate_threshold: float
    alert: bool
    message_alert: str
    message_ok: str


# The ``default`` error-budget policy of slo-generator's samples/config.yaml.
DEFAULT_STEPS: Final = (
    Step("1 hour", 3_600, 9, True, "Page to defend the SLO", "Last hour on track"),
    Step(
        "12 hours", 43_200, 3, True, "Page to defend the SLO", "Last 12 hours on track"
    ),
    Step(
        "7 days",
        604_800,
        1.5,
        False,
        "Dev team dedicates 25% of engineers to the reliability backlog",
        "Last week on track",
    ),
    Step(
        "28 days",
        2_419_200,
        1,
        False,
        "Freeze release, unless related to reliability or security",
        "Unfreeze release, per the agreed roll-out policy",
    ),
)

# "INFO - <name padded> | <step padded> | SLI: 99.9833 % | SLO: 99.9 % | …"
_REPORT_LINE = re.compile(
    r"^INFO - (?P<name>\S+)\s*\| (?P<step>.+?)\s*\| SLI: (?P<sli>[-\d.e]+)\s*%"
)
_ERROR_LINE = re.compile(r"^ERROR - (?P<name>\S+)\s*\| (?P<step>.+?)\s*\| (?P<why>.*)")


class SloGeneratorError(RuntimeError):
    """slo-generator could not be installed or run; the message says why."""


def slo_name(service: Service) -> str:
    return f"{service.name}-availability"


def ensure_installed(venv: Path) -> Path:
    """The ``slo-generator`` command of ``venv``, installing it there first if need be.

    The environment is kept between runs (it sits in the git-ignored ``.bench``) and
    rebuilt when it does not answer with the pinned version.
    """
    command = venv / "bin" / "slo-generator"
    if command.exists() and _version(command) == VERSION:
        return command
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], what="python -m venv")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, *REQUIREMENTS], what="pip install")
    found = _version(command)
    if found != VERSION:
        raise SloGeneratorError(f"{command} reports version {found!r}, not {VERSION}")
    return command


def _version(command: Path) -> str | None:
    try:
        answer = subprocess.run(
            [str(command), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # "slo-generator v2.6.0"
    return answer.stdout.strip().removeprefix("slo-generator v") or None


def _run(command: Sequence[str], *, what: str) -> None:
    try:
        finished = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SloGeneratorError(f"{what} took longer than {error.timeout}s") from error
    if finished.returncode != 0:
        raise SloGeneratorError(
            f"{what} failed ({finished.returncode}): {finished.stderr.strip()[-2000:]}"
        )


def write_config(path: Path, *, prometheus_url: str) -> None:
    """The shared config: the Prometheus backend, the default policy, no exporter."""
    config = {
        "backends": {"prometheus": {"url": prometheus_url}},
        "exporters": {},
        "error_budget_policies": {
            "default": {
                "steps": [
                    {
                        "name": step.name,
                        "burn_rate_threshold": step.burn_rate_threshold,
                        "alert": step.alert,
                        "message_alert": step.message_alert,
                        "message_ok": step.message_ok,
                        "window": step.window_seconds,
                    }
                    for step in DEFAULT_STEPS
                ]
            }
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def write_slos(directory: Path, services: Sequence[Service]) -> None:
    """One ``sre.google.com/v2`` file per service: good over valid (every code)."""
    directory.mkdir(parents=True, exist_ok=True)
    for service in services:
        selector = f'{METRIC}{{service="{service.name}"'
        document = {
            "apiVersion": "sre.google.com/v2",
            "kind": "ServiceLevelObjective",
            "metadata": {
                "name": slo_name(service),
                "labels": {"service_name": service.name, "slo_name": "availability"},
            },
            "spec": {
                "description": f"{service.name} requests answered without a 5xx",
                "backend": "prometheus",
                "method": "good_bad_ratio",
                "service_level_indicator": {
                    "filter_good": f'{selector}, code="{GOOD_CODE}"}}[window]',
                    "filter_valid": f"{selector}}}[window]",
                },
                "goal": GOAL,
            },
        }
        path = directory / f"{slo_name(service)}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))


@dataclass
class Reports:
    """What one ``compute`` run logged: SLI per (SLO name, window), and failures."""

    sli: dict[tuple[str, int], float]
    errors: dict[tuple[str, str], str]


def parse_log(text: str) -> Reports:
    windows = {step.name: step.window_seconds for step in DEFAULT_STEPS}
    reports = Reports(sli={}, errors={})
    for line in text.splitlines():
        if match := _REPORT_LINE.match(line):
            window = windows[match["step"]]
            reports.sli[(match["name"], window)] = float(match["sli"]) / 100
        elif match := _ERROR_LINE.match(line):
            reports.errors[(match["name"], match["step"])] = match["why"]
    return reports
