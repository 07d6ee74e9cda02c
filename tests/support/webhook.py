"""webhook-intake in tests: notifications as Alertmanager writes them, the function
served by a real uvicorn on 127.0.0.1, and a real Alertmanager in front of it.

- :func:`alert` and :func:`notification` build version-4 webhook bodies.
- :class:`ServedFunction` runs a function's ASGI app (built by functions-framework,
  as on Knative) in uvicorn on a free loopback port, in a thread, and counts the
  requests it answered by status.
- :class:`AlertmanagerServer` runs Debian's ``prometheus-alertmanager`` on a free
  loopback port with no cluster listener, its webhook receiver pointed at a URL
  with a bearer token, and pushes alerts through its API (``POST /api/v2/alerts``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import uvicorn

from sla.clients.store import Store
from sla.dev.processes import stop_process
from tests.support.functions import RecordingSink, function_env, load_function
from tests.support.schemas import drop_schema, fresh_schema_name
from tests.support.servers import free_port

START_SECONDS: Final = 15.0

TOKEN: Final = "test-webhook-token-6f1c"
"""The bearer token tests configure; never a real secret."""


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def alert(
    *,
    status: str = "firing",
    labels: Mapping[str, str] | None = None,
    starts_at: str = "2026-01-05T10:00:00Z",
    ends_at: str = "0001-01-01T00:00:00Z",
    fingerprint: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One alert as Alertmanager writes it into a notification."""
    body: dict[str, Any] = {
        "status": status,
        "labels": dict(
            {"alertname": "HighErrorRate", "job": "api"} if labels is None else labels
        ),
        "annotations": {"summary": "errors above budget"},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up",
    }
    if fingerprint is not None:
        body["fingerprint"] = fingerprint
    body.update(extra)
    return body


def notification(
    alerts: Sequence[Mapping[str, Any]], /, **extra: Any
) -> dict[str, Any]:
    """A version-4 webhook body around ``alerts``."""
    statuses = {a.get("status") for a in alerts}
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": "firing" if "firing" in statuses else "resolved",
        "receiver": "sla",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(alerts),
    }
    body.update(extra)
    return body


def as_request(body: Any, *, token: str | None = TOKEN) -> tuple[dict[str, str], bytes]:
    """Headers and bytes of a webhook post, as Alertmanager sends it."""
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return headers, json.dumps(body).encode()


class _Lifespan:
    """Closes the function's clients when uvicorn shuts down, in uvicorn's loop
    (the loop the store pool belongs to); counts answers by status."""

    def __init__(self, app: Any, close: Callable[..., Any]) -> None:
        self.app = app
        self.close = close
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start" and scope["path"] == "/":
                with self.lock:
                    self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close(grace=5.0)
                await send({"type": "lifespan.shutdown.complete"})
                return


class ServedFunction:
    """A function module's ASGI app in uvicorn on 127.0.0.1, in a thread."""

    def __init__(self, module: Any, app: Any) -> None:
        self.module = module
        self.port = free_port()
        self._app = _Lifespan(app, module.function.aclose)
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> ServedFunction:
        self._thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=START_SECONDS)

    def answers(self) -> Counter[int]:
        """How many webhook posts were answered with each status."""
        with self._app.lock:
            return Counter(self._app.statuses)


class AlertmanagerServer:
    """``prometheus-alertmanager`` on 127.0.0.1, its one receiver our webhook."""

    def __init__(
        self,
        directory: Path,
        *,
        webhook_url: str,
        token: str = TOKEN,
        group_wait: str = "100ms",
        group_interval: str = "500ms",
        repeat_interval: str = "1h",
    ) -> None:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            raise AssertionError(
                "prometheus-alertmanager is not installed (Debian package "
                "prometheus-alertmanager); .ci/run installs it"
            )
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.config = directory / "alertmanager.yml"
        self.config.write_text(
            json.dumps(
                _config(
                    webhook_url,
                    token=token,
                    group_wait=group_wait,
                    group_interval=group_interval,
                    repeat_interval=repeat_interval,
                ),
                indent=2,
            )
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / "alertmanager.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AlertmanagerServer:
        command = [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            # Empty: no cluster (gossip) listener, which would bind every
            # interface.
            "--cluster.listen-address=",
            "--log.level=debug",
        ]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        with httpx.Client(trust_env=False, timeout=1) as client:
            while time.monotonic() < deadline:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise AssertionError(f"alertmanager exited:\n{self.log()}")
                try:
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise AssertionError(f"alertmanager did not get ready:\n{self.log()}")

    def push(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Post alerts as Prometheus does (``labels``, ``startsAt``, ``endsAt`` …)."""
        with httpx.Client(trust_env=False, timeout=5) as client:
            answer = client.post(f"{self.url}/api/v2/alerts", json=list(alerts))
        assert answer.status_code == 200, answer.text

    def log(self) -> str:
        return self._log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process, timeout=START_SECONDS)
        self._process = None


def _config(
    webhook_url: str,
    *,
    token: str,
    group_wait: str,
    group_interval: str,
    repeat_interval: str,
) -> dict[str, Any]:
    # JSON is YAML: the config is written with json.dumps, no YAML library needed.
    return {
        "route": {
            "receiver": "sla",
            "group_by": ["alertname"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [
            {
                "name": "sla",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials": token}
                        },
                    }
                ],
            }
        ],
    }


def wait_until(condition: Callable[[], bool], *, timeout: float, message: str) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


def run(coroutine: Any) -> Any:
    """Run a coroutine from a synchronous test (its own loop, closed after)."""
    return asyncio.run(coroutine)


async def _create_schema(database_url: str, schema: str) -> None:
    store = await Store.open(database_url, schema=schema, pool_size=1)
    await store.close()


@pytest.fixture
def serve_intake(
    monkeypatch: pytest.MonkeyPatch, database_url: str, sink: RecordingSink
) -> Iterator[Callable[..., ServedFunction]]:
    """Starts webhook-intake in uvicorn on 127.0.0.1 (bearer token :data:`TOKEN`,
    K_SINK the recording sink, a fresh schema); stops it and drops the schema."""
    schema = fresh_schema_name()
    run(_create_schema(database_url, schema))
    served: list[ServedFunction] = []

    def start(**settings: str) -> ServedFunction:
        function_env(
            monkeypatch,
            database_url=database_url,
            schema=schema,
            K_SINK=sink.url,
            SLA_WEBHOOK_TOKEN=TOKEN,
            **settings,
        )
        module, app = load_function("webhook-intake")
        served.append(ServedFunction(module, app).start())
        return served[-1]

    yield start
    for function in served:
        function.stop()
    run(drop_schema(database_url, schema))
