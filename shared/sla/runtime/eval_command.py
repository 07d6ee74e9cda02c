"""``sla eval`` and ``sla chunks purge``: evaluation from the command line.

``sla eval`` evaluates every SLO in the given files at one instant (now, rounded
down to the minute, or ``--at``), using and filling the chunk history in the store
unless ``--no-cache`` asks for a fresh evaluation that reads and writes nothing.
It never writes budget snapshots: their history is the running system's.
The SLO definitions are kept in a cache in the user's cache directory and reused
while the files are unchanged, unless ``--no-cache`` or ``SLA_SPEC_CACHE=false``.

Exit codes: 0 when the evaluation ran, whatever the statuses; 1 when the files are
unusable; 2 when an argument is wrong; 3 when no SLO could be evaluated because
Prometheus could not be reached or refused every query (an address that is not a
Prometheus server, for one).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import TypeAdapter
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from sla.clients.prometheus import without_credentials
from sla.errors import SLAError, StoreError
from sla.model.slo import SLODefinition
from sla.model.snapshot import BudgetSnapshot
from sla.runtime.console import snapshot_table
from sla.runtime.resources import Datasources, open_store
from sla.runtime.settings import Settings, SettingsError, load_settings
from sla.services.evaluation import (
    DATASOURCE_FAILURES,
    EvaluationOptions,
    EvaluationResult,
    Evaluator,
)
from sla.services.queries import history_keys
from sla.specs import load_paths
from sla.specs.cache import SpecCache, spec_digest

# pydantic writes the list itself: json.dumps of model_dump's dicts took a twentieth
# of a warm tick of 1,000 SLOs.
_SNAPSHOTS = TypeAdapter(list[BudgetSnapshot])

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNUSABLE = 3

# SLOs evaluated per call when a progress bar is shown; each call batches its
# queries, so this only sets how often the bar moves.
PROGRESS_BATCH = 100
PROGRESS_THRESHOLD = 200
PIPED_WIDTH = 160


def parse_instant(text: str) -> datetime:
    """RFC 3339 (``2026-01-10T12:00:00Z``) or Unix seconds, not in the future."""
    stripped = text.strip()
    try:
        if stripped.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(stripped), tz=UTC)
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time or Unix seconds"
        ) from error
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone; add Z or an offset"
        )
    now = datetime.now(UTC)
    if moment > now:
        # Prometheus would answer with nothing, and the chunk history would keep
        # the empty hours as measured.
        raise argparse.ArgumentTypeError(
            f"{text!r} is in the future (it is now {now:%Y-%m-%dT%H:%M:%SZ}); "
            "leave --at out to evaluate now"
        )
    return moment.astimezone(UTC)


def evaluation_time(at: datetime | None) -> datetime:
    """The design's rule: an instant rounded down to the minute."""
    moment = at or datetime.now(UTC)
    return moment.replace(second=0, microsecond=0)


def options_from(settings: Settings, *, incremental: bool) -> EvaluationOptions:
    return EvaluationOptions(
        chunk_seconds=settings.chunk_seconds,
        settle_seconds=settings.chunk_settle_seconds,
        scrape_interval=settings.scrape_interval_seconds,
        incremental=incremental,
    )


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument(
        "--prometheus", metavar="URL", help="default datasource (SLA_PROMETHEUS_URL)"
    )
    parser.add_argument(
        "--at",
        type=parse_instant,
        metavar="TIME",
        help="evaluate at this past instant (RFC 3339 or Unix seconds)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="evaluate afresh: read every spec file, and neither read nor write "
        "chunk history",
    )
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


def run_eval(args: argparse.Namespace) -> int:
    err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    try:
        overrides = {"prometheus_url": args.prometheus} if args.prometheus else {}
        settings = load_settings(**overrides)
    except SettingsError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}")
        return EXIT_INVALID
    use_cache = settings.spec_cache and not args.no_cache
    slos = _definitions(args.paths, err, cache=SpecCache() if use_cache else None)
    if slos is None:
        return EXIT_INVALID
    at = evaluation_time(args.at)
    try:
        return asyncio.run(
            _evaluate_and_print(slos, at=at, settings=settings, args=args, console=err)
        )
    except StoreError as error:
        err.print(f"[bold red]error:[/] the store failed: {escape(str(error))}")
        return EXIT_UNUSABLE


def _definitions(
    paths: Sequence[str], console: Console, *, cache: SpecCache | None
) -> list[SLODefinition] | None:
    """The SLOs in the files, from the cache while they are unchanged; None after
    printing the errors when the files are unusable."""
    if cache is None:
        return _load(paths, console)
    key = spec_digest(paths)
    cached = cache.get(key) if key is not None else None
    if cached:
        return cached
    slos = _load(paths, console)
    # Kept only if the files did not change while they were read.
    if slos is not None and key is not None and spec_digest(paths) == key:
        cache.put(key, slos)
    return slos


def _load(paths: Sequence[str], console: Console) -> list[SLODefinition] | None:
    result = load_paths(paths)
    for finding in result.errors:
        console.print(f"[bold red]error:[/] {escape(finding.describe())}")
    if not result.ok:
        return None
    slos = [obj for obj in result.objects if isinstance(obj, SLODefinition)]
    if not slos:
        console.print("no SLODefinition in the given files")
        return None
    return slos


async def _evaluate_and_print(
    slos: Sequence[SLODefinition],
    *,
    at: datetime,
    settings: Settings,
    args: argparse.Namespace,
    console: Console,
) -> int:
    # The main task returns the exit code, not the outcome: when asyncio.run puts
    # its SIGINT handler back it formats the finished task, result and all, and a
    # thousand snapshots took a tenth of a second to format.
    outcome = await _evaluate(
        slos, at=at, settings=settings, fresh=args.no_cache, console=console
    )
    return _print(outcome, output=args.output, console=console)


async def _evaluate(
    slos: Sequence[SLODefinition],
    *,
    at: datetime,
    settings: Settings,
    fresh: bool,
    console: Console,
) -> EvaluationResult:
    datasources = Datasources(settings)
    try:
        if fresh:
            evaluator = Evaluator(
                datasources.client_for,
                default_datasource=datasources.default_url,
                options=options_from(settings, incremental=False),
            )
            return await _in_batches(evaluator, slos, at=at, console=console)
        async with open_store(settings) as store:
            evaluator = Evaluator(
                datasources.client_for,
                default_datasource=datasources.default_url,
                chunks=store,
                options=options_from(settings, incremental=True),
            )
            # The snapshots are not stored: the snapshot history is the running
            # system's record of the catalogued definitions, and a file here may
            # say otherwise under the same name. Chunks are keyed by what they
            # count, so sharing them is safe.
            return await _in_batches(evaluator, slos, at=at, console=console)
    finally:
        await datasources.aclose()


async def _in_batches(
    evaluator: Evaluator,
    slos: Sequence[SLODefinition],
    *,
    at: datetime,
    console: Console,
) -> EvaluationResult:
    composites = any(slo.spec.indicator.composite for slo in slos)
    if len(slos) < PROGRESS_THRESHOLD or composites or not console.is_terminal:
        return await evaluator.evaluate(slos, at=at)
    combined = EvaluationResult(snapshots=[])
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(slos))
        for start in range(0, len(slos), PROGRESS_BATCH):
            batch = slos[start : start + PROGRESS_BATCH]
            part = await evaluator.evaluate(batch, at=at)
            combined.snapshots.extend(part.snapshots)
            combined.unavailable.update(part.unavailable)
            progress.advance(task, len(batch))
    return combined


def _print(outcome: EvaluationResult, *, output: str, console: Console) -> int:
    snapshots: list[BudgetSnapshot] = outcome.snapshots
    if output == "json":
        sys.stdout.write(_SNAPSHOTS.dump_json(snapshots, indent=2).decode() + "\n")
    else:
        out = Console(highlight=False)
        if not out.is_terminal:
            # Piped output has no width to fit; 80 columns would fold SLO names.
            out = Console(highlight=False, width=PIPED_WIDTH)
        out.print(snapshot_table(snapshots))
    for url, reason in outcome.unavailable.items():
        console.print(
            f"[bold red]error:[/] datasource {without_credentials(url)} unusable: "
            f"{escape(reason)}"
        )
    failed = [
        snap
        for snap in snapshots
        if (snap.reason or "").startswith(DATASOURCE_FAILURES)
    ]
    if not snapshots or len(failed) < len(snapshots):
        return EXIT_OK
    if not outcome.unavailable:
        first = failed[0]
        console.print(
            "[bold red]error:[/] no SLO could be evaluated; "
            f"{first.slo}: {escape(first.reason or '')}"
        )
    return EXIT_UNUSABLE


def add_purge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files whose SLOs' histories to drop; none: drop every history",
    )


def run_purge(args: argparse.Namespace) -> int:
    err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    keys: list[str] | None = None
    if args.paths:
        result = load_paths(args.paths)
        if not result.ok:
            for finding in result.errors:
                err.print(f"error: {escape(finding.describe())}")
            return EXIT_INVALID
        keys = [
            key
            for obj in result.objects
            if isinstance(obj, SLODefinition)
            for key in history_keys(obj.spec)
        ]
    try:
        settings = load_settings()
        deleted = asyncio.run(_purge(settings, keys))
    except (SettingsError, SLAError) as error:
        err.print(f"error: {escape(str(error))}")
        return EXIT_UNUSABLE
    print(f"dropped {deleted} chunk(s)")
    return EXIT_OK


async def _purge(settings: Settings, keys: list[str] | None) -> int:
    async with open_store(settings) as store:
        return await store.purge_chunks(keys)
