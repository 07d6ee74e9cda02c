"""``sla dev``: every function on one machine, with the code that runs on Knative.

Each function runs as its own process through ``sla serve`` (functions-framework's
ASGI mode, target ``handler``), as a Knative revision would. Around them:

- a local broker (:mod:`sla.dev.broker`) routing by the Triggers in ``eventing/``,
  whose ingress every function gets as ``K_SINK``;
- the PingSources of ``eventing/`` on their schedules (``--minute-seconds`` makes
  a minute shorter, for demos and tests);
- the embedded PostgreSQL unless ``SLA_DATABASE_URL`` is set, started once here and
  shared by every function; Redis when ``SLA_REDIS_URL`` is set;
- freeze-enforcer in dry-run unless a kubeconfig is given (``--kubeconfig`` or
  ``SLA_KUBECONFIG``): it records what it would change and touches nothing.

The state directory holds the webhook and API tokens (mode 0600), each function's
log, the dead letters and the topics the cluster would publish to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import platformdirs

from sla.clients.embedded import EmbeddedPostgres
from sla.clients.store import Store
from sla.dev.broker import LocalBroker
from sla.dev.manifests import Mesh, load_mesh
from sla.dev.pings import PingScheduler
from sla.dev.processes import log_tail
from sla.errors import SLAError

FUNCTIONS: Final = (
    "sli-calculator",
    "policy-evaluator",
    "freeze-enforcer",
    "webhook-intake",
    "slo-catalog",
    "budget-api",
)
DEFAULT_BROKER_PORT: Final = 8180
DEFAULT_WEBHOOK_PORT: Final = 8190
READY_TIMEOUT_SECONDS: Final = 60.0
STOP_TIMEOUT_SECONDS: Final = 15.0


class DevError(SLAError):
    """``sla dev`` could not start; the message says what to fix."""


@dataclass
class DevOptions:
    repository: Path
    state_dir: Path
    prometheus_url: str | None = None
    kubeconfig: Path | None = None
    broker_port: int = DEFAULT_BROKER_PORT
    webhook_port: int = DEFAULT_WEBHOOK_PORT
    first_port: int = 8181
    minute_seconds: float | None = None
    slos: Sequence[Path] = ()
    postgres_dir: Path | None = None
    """The embedded PostgreSQL's data; ``postgres/`` in the state directory when
    unset. ``sla dev`` without ``--state-dir`` uses the command line's default, so
    that ``sla apply`` and ``sla eval`` on this machine reach the same database."""


@dataclass
class Endpoints:
    broker: str
    functions: dict[str, str]
    webhook_token_file: Path
    api_token_file: Path
    database: str

    @property
    def webhook_url(self) -> str:
        return self.functions["webhook-intake"] + "/"

    @property
    def status_page(self) -> str:
        return self.functions["budget-api"] + "/"


@dataclass
class DevSystem:
    """The running system; ``stop`` ends it cleanly."""

    options: DevOptions
    endpoints: Endpoints
    broker: LocalBroker
    pings: PingScheduler
    store: Store
    processes: dict[str, asyncio.subprocess.Process]
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    embedded: EmbeddedPostgres | None = None
    _server: Any = None

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(_stop(p) for p in self.processes.values()))
        if self._server is not None:
            self._server.should_exit = True
        await self.broker.aclose()
        await self.store.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


def default_state_dir() -> Path:
    return Path(platformdirs.user_state_dir("sla")) / "dev"


def ensure_token(path: Path) -> str:
    """A token kept in a file only its owner can read; made once, then reused."""
    if path.exists():
        path.chmod(0o600)
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(token + "\n")
    return token


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def plan_ports(options: DevOptions) -> dict[str, int]:
    ports: dict[str, int] = {"webhook-intake": options.webhook_port}
    candidate = options.first_port
    taken = {options.broker_port, options.webhook_port}
    for name in FUNCTIONS:
        if name in ports:
            continue
        while candidate in taken or not port_is_free(candidate):
            candidate += 1
        ports[name] = candidate
        taken.add(candidate)
    for name, port in (
        ("broker", options.broker_port),
        ("webhook", options.webhook_port),
    ):
        if not port_is_free(port):
            raise DevError(f"port {port} for the {name} is taken; choose another")
    return ports


async def start(options: DevOptions) -> DevSystem:
    """Start everything; raises DevError with the reason when it cannot."""
    mesh = load_mesh(options.repository / "eventing")
    options.state_dir.mkdir(parents=True, exist_ok=True)
    (options.state_dir / "logs").mkdir(exist_ok=True)
    embedded, database = await _database(options)
    store = await Store.open(database)
    ports = plan_ports(options)
    endpoints = Endpoints(
        broker=f"http://127.0.0.1:{options.broker_port}",
        functions={n: f"http://127.0.0.1:{p}" for n, p in ports.items()},
        webhook_token_file=options.state_dir / "webhook-token",
        api_token_file=options.state_dir / "api-token",
        database=database,
    )
    ensure_token(endpoints.webhook_token_file)
    ensure_token(endpoints.api_token_file)
    if options.slos:
        await _apply(store, options.slos)
    broker = LocalBroker(
        mesh, subscribers=endpoints.functions, state_dir=options.state_dir
    )
    server, serving = await _serve_broker(broker, options.broker_port)
    environment = _environment(options, endpoints)
    processes = {
        name: await _spawn(name, port, options, environment)
        for name, port in ports.items()
    }
    system = DevSystem(
        options=options,
        endpoints=endpoints,
        broker=broker,
        pings=PingScheduler(
            mesh.pings, broker.publish, minute_seconds=options.minute_seconds
        ),
        store=store,
        processes=processes,
        embedded=embedded,
        tasks=[serving],
        _server=server,
    )
    try:
        await _wait_ready(endpoints, processes, options.state_dir / "logs")
    except BaseException:
        await system.stop()
        raise
    system.tasks.append(asyncio.create_task(system.pings.run()))
    return system


async def _database(options: DevOptions) -> tuple[EmbeddedPostgres | None, str]:
    url = os.environ.get("SLA_DATABASE_URL")
    if url:
        return None, url
    configured = os.environ.get("SLA_EMBEDDED_POSTGRES_DIR")
    directory = Path(configured) if configured else options.postgres_dir
    embedded = EmbeddedPostgres(directory or options.state_dir / "postgres")
    return embedded, await asyncio.to_thread(embedded.start)


async def _apply(store: Store, paths: Sequence[Path]) -> None:
    from sla.services.catalogue import apply_objects
    from sla.specs import load_paths

    result = load_paths(paths)
    if not result.ok:
        problems = "; ".join(finding.describe() for finding in result.errors)
        raise DevError(f"--slos: {problems}")
    await apply_objects(store, result.objects)


async def _serve_broker(
    broker: LocalBroker, port: int
) -> tuple[Any, asyncio.Task[Any]]:
    import uvicorn

    # uvicorn takes a bound method for an ASGI2 app unless told: its __call__ is
    # not a coroutine function, and every request then fails with a TypeError.
    config = uvicorn.Config(
        broker.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        interface="asgi3",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise DevError(f"the broker could not listen on 127.0.0.1:{port}")
        await asyncio.sleep(0.02)
    return server, task


def _environment(options: DevOptions, endpoints: Endpoints) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(
        {
            "K_SINK": endpoints.broker + "/",
            "SLA_DATABASE_URL": endpoints.database,
            "SLA_WEBHOOK_TOKEN_FILE": str(endpoints.webhook_token_file),
            "SLA_API_TOKEN_FILE": str(endpoints.api_token_file),
        }
    )
    # A token given in the environment would clash with the file above.
    environment.pop("SLA_WEBHOOK_TOKEN", None)
    environment.pop("SLA_API_TOKEN", None)
    if options.prometheus_url:
        environment["SLA_PROMETHEUS_URL"] = options.prometheus_url
    kubeconfig = options.kubeconfig or environment.get("SLA_KUBECONFIG")
    if kubeconfig:
        environment["SLA_KUBECONFIG"] = str(kubeconfig)
    else:
        # No cluster: freeze-enforcer records what it would change, and nothing else.
        environment["SLA_ENFORCEMENT"] = "dry-run"
    return environment


async def _spawn(
    name: str, port: int, options: DevOptions, environment: Mapping[str, str]
) -> asyncio.subprocess.Process:
    log = (options.state_dir / "logs" / f"{name}.log").open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sla.cli",
            "serve",
            name,
            "--port",
            str(port),
            "--functions",
            str(options.repository / "functions"),
            "--grace",
            "10",
            env={**environment, "PORT": str(port)},
            stdout=log,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
        )
    finally:
        log.close()


async def _wait_ready(
    endpoints: Endpoints,
    processes: Mapping[str, asyncio.subprocess.Process],
    logs: Path,
) -> None:
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_SECONDS
    pending = dict(endpoints.functions)
    async with httpx.AsyncClient(timeout=2.0) as client:
        while pending:
            for name, url in list(pending.items()):
                if processes[name].returncode is not None:
                    tail = log_tail(logs / f"{name}.log", 20)
                    raise DevError(f"{name} exited at start:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(f"{url}/healthz/ready")
                    if answer.status_code < 300:
                        del pending[name]
            if asyncio.get_running_loop().time() > deadline:
                waiting = ", ".join(pending)
                raise DevError(f"not ready in {READY_TIMEOUT_SECONDS:.0f}s: {waiting}")
            await asyncio.sleep(0.2)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def running(options: DevOptions) -> AsyncIterator[DevSystem]:
    system = await start(options)
    try:
        yield system
    finally:
        await system.stop()


__all__ = [
    "FUNCTIONS",
    "DevError",
    "DevOptions",
    "DevSystem",
    "Endpoints",
    "Mesh",
    "default_state_dir",
    "ensure_token",
    "running",
    "start",
]
