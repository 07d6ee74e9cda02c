"""The ``sla`` command line.

Each subcommand is a small ``add_<name>`` function that registers its parser and
the function that runs it; the work itself lives in the library. To add one,
write its ``add_`` function and list it in ``SUBCOMMANDS``.

Exit codes: 0 success, 1 invalid input (any error finding), 2 usage errors
(argparse's own).
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
from collections.abc import Callable, Sequence
from typing import ClassVar, Final, TextIO, TypeAlias

from rich.console import Console
from rich.text import Text

from sla import __version__
from sla.specs import Finding, LoadResult, load_paths, to_yaml

EXIT_OK = 0
EXIT_INVALID = 1

Commands: TypeAlias = "argparse._SubParsersAction[CommandParser]"
Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sla`` console script; returns the exit code."""
    parser = build_parser()
    if argv is None:
        # The console script, a process of its own; a caller's process keeps
        # its collector as it is.
        _tune_garbage_collector()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


GC_THRESHOLDS: Final = (50_000, 20, 10)
"""Python's default (700, 10, 10) collects the youngest objects every 700
allocations and walks every live object at each full collection."""


def _tune_garbage_collector() -> None:
    """Collect cycles less often, and never walk what the imports created.

    Reading 1,000 specs and evaluating them allocates millions of objects that
    live until the command ends; with the default thresholds the collector's
    passes over them were a quarter of a warm ``sla eval``'s CPU time. Cycles are
    still collected, after 50,000 allocations instead of 700.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def as_help(docstring: str | None) -> str:
    """A command module's docstring as terminal help: reStructuredText's inline
    literals and roles written as plain words."""
    text = _ROLE.sub(r"\1", docstring or "")
    return text.replace("``", "")


# :mod:`sla.specs`, :class:`~sla.errors.StoreError`
_ROLE: Final = re.compile(r":[a-z]+:`~?([^`]+)`")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sla", description="SLOs, error budgets and release freezes."
    )
    parser.add_argument("--version", action="version", version=f"sla {__version__}")
    commands = parser.add_subparsers(
        title="commands",
        metavar="COMMAND",
        required=True,
        parser_class=CommandParser,
    )
    for add in SUBCOMMANDS:
        add(commands)
    return parser


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser, which refuses what it does not know itself.

    argparse hands a subcommand's unknown arguments up to ``sla``, whose error
    shows the top-level usage and none of the subcommand's options.
    """

    # typeshed overloads this on the namespace's type; argparse calls it with a
    # Namespace or None, which one signature covers.
    def parse_known_args(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, unknown = super().parse_known_args(args, namespace)
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed, unknown


# validate ---------------------------------------------------------------------


def add_validate(commands: Commands) -> None:
    parser = commands.add_parser(
        "validate",
        help="check SLO and policy specs, native or from other tools",
        description=(
            "Check every document under PATH (files, or directories searched for "
            "*.yaml and *.yml). Exit 0 only when every document is valid; notes "
            "about fields not carried over or defaults applied do not fail."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    result = load_paths(args.paths)
    report = Report(sys.stderr)
    report.findings(result)
    if not result.ok:
        report.summary(f"{len(result.errors)} error(s) in {_counted(result)}", ok=False)
        return EXIT_INVALID
    kinds = _kind_counts(result)
    print(f"valid: {_counted(result)}; {kinds}")
    return EXIT_OK


# convert ----------------------------------------------------------------------


def add_convert(commands: Commands) -> None:
    parser = commands.add_parser(
        "convert",
        help="write specs of other tools as native SLODefinition YAML",
        description=(
            "Convert every document under PATH to native sla.dev/v1alpha1 YAML on "
            "stdout; notes and errors go to stderr. When any document is invalid "
            "nothing is written to stdout, so a pipe never applies half a conversion."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.set_defaults(handler=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    result = load_paths(args.paths)
    report = Report(sys.stderr)
    report.findings(result)
    if not result.ok:
        report.summary(f"{len(result.errors)} error(s): nothing converted", ok=False)
        return EXIT_INVALID
    headers = [item.origin for item in result.converted]
    sys.stdout.write(to_yaml(result.objects, headers=headers))
    return EXIT_OK


# eval, chunks -----------------------------------------------------------------


def add_eval(commands: Commands) -> None:
    from sla.runtime import eval_command

    parser = commands.add_parser(
        "eval",
        help="evaluate SLOs against Prometheus, now or at a past instant",
        description=as_help(eval_command.__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    eval_command.add_eval_arguments(parser)
    parser.set_defaults(handler=eval_command.run_eval)


def add_chunks(commands: Commands) -> None:
    from sla.runtime import eval_command

    parser = commands.add_parser("chunks", help="manage the chunk history")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    purge = actions.add_parser(
        "purge",
        help="drop the chunk history of the SLOs in PATH…, or of every SLO",
        description="Drop chunk history known to be wrong; the next evaluation "
        "reads the window again from Prometheus.",
    )
    eval_command.add_purge_arguments(purge)
    purge.set_defaults(handler=eval_command.run_purge)


def add_rules(commands: Commands) -> None:
    from sla.runtime import rules_command

    parser = commands.add_parser(
        "rules",
        help="write Prometheus recording rules and burn-rate alerts for SLOs",
        description=as_help(rules_command.__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rules_command.add_rules_arguments(parser)
    parser.set_defaults(handler=rules_command.run_rules)


# serve, apply --------------------------------------------------------------------


def add_serve(commands: Commands) -> None:
    from sla.runtime import serve_command

    parser = commands.add_parser(
        "serve",
        help="run one function locally, as Knative would",
        description=as_help(serve_command.__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve_command.add_serve_arguments(parser)
    parser.set_defaults(handler=serve_command.run_serve)


def add_apply(commands: Commands) -> None:
    from sla.runtime import apply_command

    parser = commands.add_parser(
        "apply",
        help="load SLOs and policies into the catalogue without a cluster",
        description=as_help(apply_command.__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply_command.add_apply_arguments(parser)
    parser.set_defaults(handler=apply_command.run_apply)


def add_dev(commands: Commands) -> None:
    from sla.dev import command

    parser = commands.add_parser(
        "dev",
        help="run the whole system on this machine",
        description=as_help(command.__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_dev_arguments(parser)
    parser.set_defaults(handler=command.run_dev)


SUBCOMMANDS: tuple[Callable[[Commands], None], ...] = (
    add_validate,
    add_convert,
    add_eval,
    add_chunks,
    add_rules,
    add_dev,
    add_serve,
    add_apply,
)


# output -----------------------------------------------------------------------


class Report:
    """Findings on stderr: coloured on a terminal, plain text when piped."""

    _STYLES: ClassVar[dict[str, str]] = {"error": "bold red", "note": "yellow"}
    _LABELS: ClassVar[dict[str, str]] = {"error": "error", "note": "warning"}

    def __init__(self, stream: TextIO) -> None:
        self.console = Console(file=stream, highlight=False, soft_wrap=True)

    def findings(self, result: LoadResult) -> None:
        for finding in result.findings:
            self.finding(finding)

    def finding(self, finding: Finding) -> None:
        label = self._LABELS[finding.severity]
        line = Text.assemble((f"{label}:", self._STYLES[finding.severity]), " ")
        line.append(finding.describe())
        self.console.print(line)

    def summary(self, text: str, *, ok: bool) -> None:
        self.console.print(Text(text, style="bold" if ok else "bold red"))


def _counted(result: LoadResult) -> str:
    return f"{result.documents} document(s) in {result.files} file(s)"


def _kind_counts(result: LoadResult) -> str:
    slos = sum(1 for obj in result.objects if obj.kind == "SLODefinition")
    policies = len(result.objects) - slos
    notes = len(result.notes)
    return f"{slos} SLODefinition(s), {policies} SLAPolicy(ies), {notes} note(s)"


if __name__ == "__main__":
    sys.exit(main())
