"""``sla rules``: Prometheus recording rules and burn-rate alerts for SLOs.

Writes, for every SLODefinition under PATH (native or any format ``sla convert``
reads), recording rules for the windows of its burn-rate table and one alert per
row of the table, so burn-rate alerts fire from Prometheus even while the SLA
functions are scaled to zero.

  -o rules            a Prometheus rules file (rule_files: in prometheus.yml)
  -o prometheusrule   monitoring.coreos.com/v1 PrometheusRule objects, one per SLO
                      in the SLO's namespace (the default)

Notes (windows raised to two scrape intervals, labels left off) go to stderr and
into the output as YAML comments. When any SLO cannot have rules, nothing is
written to stdout and the exit code is 1, so a pipe never applies half a set.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import yaml
from rich.console import Console

from sla.model.durations import format_duration
from sla.model.slo import SLODefinition
from sla.runtime.settings import SettingsError, load_settings
from sla.services.rules import (
    BAD_EVENTS,
    ERROR_RATIO,
    TOTAL_EVENTS,
    Problem,
    RulesResult,
    build_rules,
    prometheus_rule,
    rules_file,
)
from sla.specs import load_paths

EXIT_OK = 0
EXIT_INVALID = 1
OUTPUTS = ("prometheusrule", "rules")


def add_rules_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="prometheusrule")
    parser.add_argument(
        "--scrape-interval",
        type=_positive_seconds,
        metavar="N",
        help="seconds between scrapes; windows are at least two of them "
        "(default: SLA_SCRAPE_INTERVAL_SECONDS, 60)",
    )


def _positive_seconds(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return seconds


def run_rules(args: argparse.Namespace) -> int:
    err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    try:
        interval = args.scrape_interval or load_settings().scrape_interval_seconds
    except SettingsError as error:
        err.print(f"error: {error}", markup=False)
        return EXIT_INVALID
    loaded = load_paths(args.paths, scrape_interval=interval)
    for finding in loaded.findings:
        label = "error" if finding.severity == "error" else "warning"
        err.print(f"{label}: {finding.describe()}", markup=False)
    if not loaded.ok:
        return EXIT_INVALID
    slos = [obj for obj in loaded.objects if isinstance(obj, SLODefinition)]
    if not slos:
        err.print("error: no SLODefinition in the given files", markup=False)
        return EXIT_INVALID
    result = build_rules(slos, scrape_interval=interval)
    for problem in result.errors:
        err.print(f"error: {problem.describe()}", markup=False)
    for note in result.notes:
        err.print(f"warning: {note.describe()}", markup=False)
    if not result.ok:
        err.print(f"{len(result.errors)} SLO(s) without rules: nothing written")
        return EXIT_INVALID
    header = _header(args.paths, interval)
    sys.stdout.write(render(result, output=args.output, header=header))
    return EXIT_OK


def _header(paths: Sequence[str], interval: int) -> list[str]:
    return [
        f"Written by `sla rules` from {' '.join(paths)}; regenerate, do not edit.",
        f"Recorded per SLO and window: {TOTAL_EVENTS}, {BAD_EVENTS}, {ERROR_RATIO}",
        f"{{namespace, slo, service, window}}; scrape interval "
        f"{format_duration(interval)}.",
    ]


def render(result: RulesResult, *, output: str, header: Sequence[str] = ()) -> str:
    """The YAML text of ``result``: one rules file, or a PrometheusRule per SLO."""
    if output == "rules":
        return _comments(*header, *_note_lines(result.notes)) + dump(rules_file(result))
    documents = [
        _comments(*_note_lines(entry.notes)) + dump(prometheus_rule(entry))
        for entry in result.rules
    ]
    return _comments(*header) + "---\n".join(documents)


def _note_lines(notes: Sequence[Problem]) -> list[str]:
    return [f"note: {note.describe()}" for note in notes]


def _comments(*lines: str) -> str:
    # A comment is one line: a newline inside a note would end it.
    return "".join(f"# {' '.join(line.splitlines())}\n" for line in lines)


class _RulesDumper(yaml.SafeDumper):
    """Block style for multi-line expressions, so PromQL reads as written."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RulesDumper.add_representer(str, _string)


def dump(document: Any) -> str:
    # Keys stay in the order the rules are built in (record, expr, labels), which
    # is already deterministic; a wide line keeps one-line expressions unfolded.
    return yaml.dump(
        document,
        Dumper=_RulesDumper,
        sort_keys=False,
        allow_unicode=True,
        width=4096,
        default_flow_style=False,
    )
