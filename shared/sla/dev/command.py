"""sla dev: start the system, show where it listens, watch budgets.

On a terminal a table of SLO budgets and freezes refreshes in place; piped, a line
is printed whenever a status or a freeze changes. Ctrl-C (or SIGTERM) stops every
function, the broker and the embedded PostgreSQL cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from sla.clients.embedded import default_data_dir
from sla.dev.system import (
    DEFAULT_BROKER_PORT,
    DEFAULT_WEBHOOK_PORT,
    DevError,
    DevOptions,
    DevSystem,
    default_state_dir,
    start,
)
from sla.errors import SLAError
from sla.model.slo import SLODefinition
from sla.runtime.console import snapshot_table
from sla.runtime.serve_command import port_number
from sla.runtime.settings import Settings, load_settings

if TYPE_CHECKING:
    from sla.dev.datasources import DatasourceWatch

EXIT_OK = 0
EXIT_FAILED = 1
REFRESH_SECONDS = 2.0


def find_repository(start_at: Path | None = None) -> Path | None:
    """The checkout holding ``eventing/`` and ``functions/``: from here upwards,
    then beside the installed library (an editable install)."""
    here = (start_at or Path.cwd()).resolve()
    library = Path(__file__).resolve().parents[3]
    for candidate in (here, *here.parents, library):
        if (candidate / "eventing").is_dir() and (candidate / "functions").is_dir():
            return candidate
    return None


def positive_seconds(text: str) -> float:
    """A length of time above zero, for argparse: zero would tick without pause."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds above 0")
    return seconds


def add_dev_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slos",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="SLO and policy files to load into the catalogue at start",
    )
    parser.add_argument("--prometheus", metavar="URL", help="default datasource")
    parser.add_argument(
        "--alertmanager-port",
        type=port_number,
        default=DEFAULT_WEBHOOK_PORT,
        metavar="N",
        help="port of webhook-intake, where Alertmanager's webhook points",
    )
    parser.add_argument(
        "--broker-port",
        type=port_number,
        default=DEFAULT_BROKER_PORT,
        metavar="N",
        help="port of the local broker's ingress, every function's K_SINK; the "
        "functions take the first free ports from 8181 up",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        help="enforce freezes on this cluster (default: dry-run, nothing touched)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="tokens, logs, dead letters and topics (default: the user's state dir)",
    )
    parser.add_argument(
        "--minute-seconds",
        type=positive_seconds,
        default=None,
        metavar="S",
        help="make a PingSource minute last S seconds (demos and tests)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also run a demo service under load, Prometheus with its `sla rules`, "
        "Alertmanager, and the demo SLOs and policy (sla.dev.demo)",
    )


def run_dev(args: argparse.Namespace) -> int:
    err = Console(file=sys.stderr, highlight=False)
    repository = find_repository()
    if repository is None:
        err.print("error: run sla dev from a checkout (eventing/ and functions/)")
        return EXIT_FAILED
    options = DevOptions(
        repository=repository,
        state_dir=args.state_dir or default_state_dir(),
        prometheus_url=args.prometheus,
        kubeconfig=args.kubeconfig,
        broker_port=args.broker_port,
        webhook_port=args.alertmanager_port,
        minute_seconds=args.minute_seconds,
        slos=args.slos,
        # Where the other commands keep their embedded database, unless this run
        # was given a state directory of its own.
        postgres_dir=None if args.state_dir else default_data_dir(),
    )
    try:
        if args.demo:
            from sla.dev.demo import demo_kit

            with demo_kit(options, console=err) as demo_options:
                asyncio.run(_run(demo_options, err))
        else:
            asyncio.run(_run(options, err))
    except (DevError, SLAError) as error:
        err.print(f"error: {error}")
        return EXIT_FAILED
    return EXIT_OK


async def _run(options: DevOptions, err: Console) -> None:
    settings = _function_settings(options)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    system = await start(options)
    try:
        _announce(system, Console(highlight=False))
        await _watch(system, stopping, settings)
    finally:
        err.print("stopping…")
        await system.stop()


def _function_settings(options: DevOptions) -> Settings:
    """The settings the functions will read, checked before anything starts: the
    console asks their datasources too. Their tokens are files that sla dev
    writes, in place of any the environment gives."""
    overrides: dict[str, str | None] = dict.fromkeys(
        ("webhook_token", "webhook_token_file", "api_token", "api_token_file")
    )
    if options.prometheus_url:
        overrides["prometheus_url"] = options.prometheus_url
    return load_settings(**overrides)


def _announce(system: DevSystem, console: Console) -> None:
    endpoints = system.endpoints
    table = Table(title="sla dev", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("broker (K_SINK)", endpoints.broker + "/")
    for name, url in sorted(endpoints.functions.items()):
        table.add_row(name, url)
    table.add_row("webhook URL", endpoints.webhook_url)
    table.add_row("webhook token file", str(endpoints.webhook_token_file))
    table.add_row("API token file", str(endpoints.api_token_file))
    table.add_row("status page", endpoints.status_page)
    table.add_row("dead letters", str(system.broker.dead_letter_file))
    table.add_row("logs", str(system.options.state_dir / "logs"))
    enforcement = "dry-run" if system.options.kubeconfig is None else "on"
    table.add_row("enforcement", enforcement)
    console.print(table)


async def _watch(
    system: DevSystem, stopping: asyncio.Event, settings: Settings
) -> None:
    # Imported here: every sla command builds this one's parser.
    from sla.dev.datasources import DatasourceWatch

    console = Console(highlight=False)
    datasources = DatasourceWatch(settings)
    # Checks run beside the budgets: a datasource that does not answer can take
    # its whole timeout, and the budgets keep refreshing meanwhile.
    checking = asyncio.create_task(
        _check_datasources(system, datasources, console, stopping)
    )
    try:
        await _watch_budgets(system, stopping, console)
    finally:
        checking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checking
        await datasources.aclose()


async def _watch_budgets(
    system: DevSystem, stopping: asyncio.Event, console: Console
) -> None:
    if console.is_terminal:
        with Live(console=console, refresh_per_second=1) as live:
            while not stopping.is_set():
                live.update(await _view(system))
                await _pause(stopping, REFRESH_SECONDS)
        return
    seen: dict[str, str] = {}
    while not stopping.is_set():
        for line in await _changes(system, seen):
            console.print(line)
        await _pause(stopping, REFRESH_SECONDS)


async def _check_datasources(
    system: DevSystem,
    datasources: DatasourceWatch,
    console: Console,
    stopping: asyncio.Event,
) -> None:
    """A line when a datasource stops answering and when it answers again: every
    evaluation against it fails meanwhile, and the budgets only stop changing."""
    from sla.dev.datasources import CHECK_SECONDS
    from sla.services.catalogue import load_slos

    slos: list[SLODefinition] = []
    while not stopping.is_set():
        # The budgets' loop reports a store that fails; the last SLOs read do here.
        with contextlib.suppress(SLAError):
            slos = list((await load_slos(system.store)).values())
        for line in await datasources.check(datasources.urls(slos)):
            # One line even piped, and a reason quoting a server is not markup.
            console.print(line, markup=False, soft_wrap=True)
        await _pause(stopping, CHECK_SECONDS)


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _view(system: DevSystem) -> Group:
    snapshots, freezes = await _state(system)
    table = Table(title="Freezes", title_justify="left")
    for column in ("policy", "scope", "state", "since", "reason"):
        table.add_column(column, overflow="fold")
    for freeze in freezes:
        table.add_row(
            freeze.policy,
            freeze.scope,
            freeze.state,
            freeze.decided_at.strftime("%H:%M:%S"),
            freeze.reason,
        )
    return Group(snapshot_table(snapshots), table)


async def _state(system: DevSystem) -> tuple[list, list]:  # type: ignore[type-arg]
    entries = await system.store.list_catalogue(kind="SLODefinition")
    keys = [f"{entry.namespace}/{entry.name}" for entry in entries]
    latest = await system.store.latest_snapshots(keys) if keys else {}
    freezes = await system.store.freeze_states()
    return list(latest.values()), freezes


async def _changes(system: DevSystem, seen: dict[str, str]) -> list[str]:
    snapshots, freezes = await _state(system)
    lines = []
    for snap in snapshots:
        remaining = snap.error_budget.remaining
        shown = "—" if remaining is None else f"{remaining * 100:.2f}%"
        if seen.get(snap.slo) != snap.status:
            seen[snap.slo] = snap.status
            lines.append(f"budget {snap.slo}: {snap.status}, remaining {shown}")
    for freeze in freezes:
        key = f"freeze {freeze.policy} {freeze.scope}"
        if seen.get(key) != freeze.state:
            seen[key] = freeze.state
            lines.append(f"{key}: {freeze.state} ({freeze.reason})")
    return lines
