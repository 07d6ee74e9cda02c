"""Serving a function in a test as functions-framework serves it, and a sink.

- :func:`load_function` loads ``functions/<name>/main.py`` the way
  functions-framework's ASGI mode does (``http`` signature, target ``handler``) and
  returns the module and the ASGI app; :func:`function_env` builds the environment
  it reads its settings from, pointing the store at the test's own schema.
- :func:`binary_event` and :func:`structured_event` write CloudEvents as HTTP
  requests in either content mode.
- :class:`RecordingSink` is K_SINK: a small HTTP server on 127.0.0.1 that records
  every event posted to it, and can be told to answer 503 or to refuse connections.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from functions_framework import _function_registry
from functions_framework.aio import create_asgi_app_from_module

REPOSITORY = Path(__file__).resolve().parents[2]
FUNCTIONS = REPOSITORY / "functions"


def function_source(name: str) -> Path:
    return FUNCTIONS / name / "main.py"


def function_env(
    monkeypatch: pytest.MonkeyPatch,
    *,
    database_url: str,
    schema: str,
    **settings: str,
) -> None:
    """Settings through the environment, as Knative gives them; ``settings`` keys
    are variable names (``SLA_EVALUATION_SHARD_SIZE="2"``)."""
    separator = "&" if "?" in database_url else "?"
    monkeypatch.setenv(
        "SLA_DATABASE_URL", f"{database_url}{separator}search_path={schema}"
    )
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def load_function(name: str) -> tuple[ModuleType, Any]:
    """The function's module and its ASGI app, built by functions-framework."""
    source = str(function_source(name))
    module, spec = _function_registry.load_function_module(source)
    spec.loader.exec_module(module)
    app = create_asgi_app_from_module("handler", source, "http", module, spec)
    return module, app


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://function"
    )


def binary_event(
    event_type: str,
    *,
    source: str,
    id: str,
    data: Any = None,
    time: str | None = None,
    content_type: str = "application/json",
    **extensions: str,
) -> tuple[dict[str, str], bytes]:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": event_type,
        "ce-source": source,
        "ce-id": id,
        **{f"ce-{name}": value for name, value in extensions.items()},
    }
    if time is not None:
        headers["ce-time"] = time
    body = b"" if data is None else json.dumps(data).encode()
    if body:
        headers["content-type"] = content_type
    return headers, body


def structured_event(
    event_type: str,
    *,
    source: str,
    id: str,
    data: Any = None,
    time: str | None = None,
) -> tuple[dict[str, str], bytes]:
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "type": event_type,
        "source": source,
        "id": id,
        "datacontenttype": "application/json",
    }
    if time is not None:
        envelope["time"] = time
    if data is not None:
        envelope["data"] = data
    headers = {"content-type": "application/cloudevents+json; charset=utf-8"}
    return headers, json.dumps(envelope).encode()


@dataclass(frozen=True)
class ReceivedEvent:
    headers: Mapping[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["ce-id"]

    @property
    def type(self) -> str:
        return self.headers["ce-type"]

    def data(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingSink:
    """An HTTP server on 127.0.0.1 standing in for the broker ingress."""

    received: list[ReceivedEvent] = field(default_factory=list)
    status: int = 202
    _server: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> RecordingSink:
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                status = sink.status
                if status < 300:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    with sink._lock:
                        sink.received.append(ReceivedEvent(headers, body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        # Port 0 the first time; the same port again after a stop, so K_SINK holds.
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", self.port), Handler
        )
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: posts are refused until ``start`` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def ids(self) -> list[str]:
        with self._lock:
            return [event.id for event in self.received]

    def events(self) -> list[ReceivedEvent]:
        with self._lock:
            return list(self.received)


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    recording = RecordingSink().start()
    yield recording
    recording.stop()
