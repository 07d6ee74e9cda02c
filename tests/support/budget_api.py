"""budget-api under test: the app as functions-framework serves it, and its data.

:func:`open_api` loads ``functions/budget-api/main.py`` with settings from the
environment (the store in the test's schema, Redis of the test's own); the
``seed_*`` helpers write SLOs, policies and snapshots through the store API.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sla.clients.store import Store
from sla.model.snapshot import BudgetSnapshot, ErrorBudget, EventCounts, Status
from sla.services.catalogue import entry_from_object
from tests.support.functions import client_for, function_env, load_function
from tests.support.servers import SERVER_START_SECONDS, free_port, wait_for_port

TOKEN = "test-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
EVALUATED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def open_api(
    monkeypatch: pytest.MonkeyPatch,
    *,
    database_url: str,
    schema: str,
    **settings: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A client of the app and the function module; the clients closed after."""
    function_env(monkeypatch, database_url=database_url, schema=schema, **settings)
    module, app = load_function("budget-api")
    try:
        async with client_for(app) as client:
            yield client, module
    finally:
        await module.function.aclose()


def slo_object(
    namespace: str,
    name: str,
    *,
    service: str = "checkout",
    objective: float = 99.0,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": "SLODefinition",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels or {},
            "generation": 1,
        },
        "spec": {
            "service": service,
            "objective": objective,
            "window": "30d",
            "indicator": {
                "ratio": {
                    "bad": {"metric": 'http_requests_total{code=~"5.."}'},
                    "total": {"metric": "http_requests_total"},
                }
            },
        },
    }


def policy_object(namespace: str, name: str, slos: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": "SLAPolicy",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {
            "slos": {"names": slos},
            "freeze": {"when": [{"budgetRemainingBelow": 10}]},
            "lift": {"budgetRemainingAbove": 20, "holdFor": "30m"},
        },
    }


async def seed_objects(store: Store, *objects: dict[str, Any]) -> None:
    for obj in objects:
        await store.upsert_catalogue(entry_from_object(obj, source="test"))


def snapshot(
    slo: str,
    remaining: float,
    *,
    at: datetime = EVALUATED,
    status: Status = "healthy",
    burn_rates: dict[str, float | None] | None = None,
) -> BudgetSnapshot:
    """A snapshot with ``remaining`` given; consumed is 1 − remaining."""
    consumed = 1 - remaining
    return BudgetSnapshot(
        slo=slo,
        evaluated_at=at,
        objective=99.0,
        window="30d",
        status=status,
        sli=1 - consumed / 100,
        events=EventCounts(good=1000 - consumed * 10, bad=consumed * 10, total=1000),
        error_budget=ErrorBudget(consumed=consumed, remaining=remaining),
        burn_rates=burn_rates if burn_rates is not None else {"1h": consumed},
    )


@contextmanager
def served_on_loopback(app: Any, close: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread of this
    process; yield its base URL. ``close`` (the function's ``aclose``) runs in the
    server's loop at shutdown, where the function's pools were opened."""
    import uvicorn

    async def with_shutdown(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    port = free_port()
    config = uvicorn.Config(
        with_shutdown, host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_START_SECONDS)
