"""The adapter every function is served through, seen from the broker's side.

Each function is loaded by functions-framework (ASGI mode, ``http`` signature) and
sent real CloudEvents in both content modes. Every answer must be empty or exactly
one binary-mode CloudEvent with its content type; wrong events get 4xx with a reason
naming what is wrong, and leave nothing in the store.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sla.clients.store import Store
from tests.support.functions import (
    binary_event,
    client_for,
    function_env,
    load_function,
    structured_event,
)

TICK_SOURCE = "/apis/v1/namespaces/sla-system/pingsources/sla-tick"
TICK_TIME = "2026-01-03T00:00:00Z"
FUNCTIONS = ("sli-calculator", "slo-catalog")


@pytest.fixture
async def serve(
    monkeypatch: pytest.MonkeyPatch, database_url: str, schema_name: str, store: Store
) -> AsyncIterator[Callable[[str], Any]]:
    modules: list[Any] = []

    def start(name: str) -> Any:
        # Nothing here reaches Prometheus or the cluster: both point nowhere.
        function_env(
            monkeypatch,
            database_url=database_url,
            schema=schema_name,
            SLA_PROMETHEUS_URL="http://127.0.0.1:9",
        )
        module, app = load_function(name)
        modules.append(module)
        return app

    yield start
    for module in modules:
        await module.function.aclose()


async def post(app: Any, headers: dict[str, str], body: bytes) -> Any:
    async with client_for(app) as client:
        return await client.post("/", headers=headers, content=body)


def assert_cloudevent_answer(answer: Any) -> dict[str, Any]:
    """The answer is one binary-mode CloudEvent with JSON data; return the data."""
    assert answer.headers["content-type"] == "application/json"
    for attribute in ("specversion", "id", "source", "type"):
        assert answer.headers[f"ce-{attribute}"]
    data: dict[str, Any] = json.loads(answer.content)
    return data


def tick(**overrides: Any) -> tuple[dict[str, str], bytes]:
    options: dict[str, Any] = {"source": TICK_SOURCE, "id": "t-1", "time": TICK_TIME}
    options.update(overrides)
    return binary_event("dev.knative.sources.ping", **options)


@pytest.mark.parametrize("name", FUNCTIONS)
async def test_liveness_and_readiness(serve: Callable[[str], Any], name: str) -> None:
    app = serve(name)
    async with client_for(app) as client:
        live = await client.get("/healthz/live")
        ready = await client.get("/healthz/ready")

    assert (live.status_code, live.content) == (204, b"")
    assert (ready.status_code, ready.content) == (204, b"")


async def test_readiness_fails_while_the_store_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, serve: Callable[[str], Any]
) -> None:
    monkeypatch.setenv("SLA_DATABASE_URL", "postgresql://postgres@127.0.0.1:9/none")
    module, app = load_function("sli-calculator")
    try:
        async with client_for(app) as client:
            ready = await client.get("/healthz/ready")
            live = await client.get("/healthz/live")
    finally:
        await module.function.aclose()

    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    assert live.status_code == 204


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_an_empty_catalogue_tick_is_accepted_in_either_mode(
    serve: Callable[[str], Any], mode: str
) -> None:
    write = binary_event if mode == "binary" else structured_event
    headers, body = write(
        "dev.knative.sources.ping", source=TICK_SOURCE, id=f"t-{mode}", time=TICK_TIME
    )

    answer = await post(serve("sli-calculator"), headers, body)

    assert (answer.status_code, answer.content) == (202, b"")


BAD_EVENTS = [
    pytest.param(
        "sli-calculator",
        binary_event(
            "dev.sla.freeze.requested", source="/sla/policy-evaluator", id="x"
        ),
        400,
        "type",
        id="type-not-taken",
    ),
    pytest.param(
        "sli-calculator",
        tick(source="/apis/v1/namespaces/sla-system/pingsources/sla-relist"),
        400,
        "source",
        id="relist-ping-to-sli-calculator",
    ),
    pytest.param(
        "slo-catalog",
        tick(),
        400,
        "source",
        id="tick-ping-to-slo-catalog",
    ),
    pytest.param(
        "sli-calculator",
        binary_event(
            "dev.sla.alert.received", source="/sla/somebody-else", id="x", data={}
        ),
        400,
        "source",
        id="alert-from-an-unknown-producer",
    ),
    pytest.param(
        "sli-calculator",
        binary_event(
            "dev.sla.alert.received",
            source="/sla/webhook-intake",
            id="x",
            data={"version": 1, "status": "firing", "fingerprint": "f"},
        ),
        400,
        "data.startsAt",
        id="data-failing-validation",
    ),
    pytest.param(
        "slo-catalog",
        binary_event(
            "dev.sla.budget.calculated",
            source="/sla/sli-calculator",
            id="x",
            data={"version": 2},
        ),
        400,
        "data.version",
        id="unknown-data-version",
    ),
]


@pytest.mark.parametrize(("name", "event", "status", "field"), BAD_EVENTS)
async def test_an_event_that_can_never_succeed_is_refused_with_its_reason(
    serve: Callable[[str], Any],
    store: Store,
    name: str,
    event: tuple[dict[str, str], bytes],
    status: int,
    field: str,
) -> None:
    answer = await post(serve(name), *event)

    assert answer.status_code == status
    data = assert_cloudevent_answer(answer)
    assert answer.headers["ce-type"] == "dev.sla.event.rejected"
    assert data["field"] == field
    assert data["retryable"] is False
    assert data["reason"]
    assert await store.lookup_event(f"{name} {event[0]['ce-source']}", "x") is None


async def test_invalid_json_is_refused(serve: Callable[[str], Any]) -> None:
    headers, _ = tick(data={})

    answer = await post(serve("sli-calculator"), headers, b'{"unterminated": ')

    assert answer.status_code == 400
    assert "data is not JSON" in assert_cloudevent_answer(answer)["reason"]


async def test_an_invalid_structured_body_is_refused(
    serve: Callable[[str], Any],
) -> None:
    headers = {"content-type": "application/cloudevents+json"}

    answer = await post(serve("sli-calculator"), headers, b"not json at all")

    assert answer.status_code == 400
    assert "not JSON" in assert_cloudevent_answer(answer)["reason"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/x-www-form-urlencoded"],
)
async def test_a_wrong_content_type_is_refused_with_415(
    serve: Callable[[str], Any], content_type: str
) -> None:
    headers, body = tick(data={"hello": "world"}, content_type=content_type)

    answer = await post(serve("sli-calculator"), headers, body)

    assert answer.status_code == 415
    assert_cloudevent_answer(answer)


async def test_a_batch_is_refused_with_415(serve: Callable[[str], Any]) -> None:
    headers = {"content-type": "application/cloudevents-batch+json"}

    answer = await post(serve("slo-catalog"), headers, b"[]")

    assert answer.status_code == 415


async def test_a_body_over_the_limit_is_refused_with_413(
    serve: Callable[[str], Any], store: Store
) -> None:
    huge = {"padding": "x" * (1024 * 1024)}
    headers, body = binary_event(
        "dev.knative.apiserver.resource.add",
        source="https://10.0.0.1",
        id="huge",
        data=huge,
    )

    answer = await post(serve("slo-catalog"), headers, body)

    assert answer.status_code == 413
    assert_cloudevent_answer(answer)
    assert await store.list_catalogue() == []


async def test_plain_json_without_cloudevent_attributes_is_refused(
    serve: Callable[[str], Any],
) -> None:
    answer = await post(
        serve("sli-calculator"), {"content-type": "application/json"}, b"{}"
    )

    assert answer.status_code == 400
    assert "not a CloudEvent" in assert_cloudevent_answer(answer)["reason"]


async def test_missing_attributes_are_named(serve: Callable[[str], Any]) -> None:
    headers, body = tick()
    del headers["ce-id"]

    answer = await post(serve("sli-calculator"), headers, body)

    assert answer.status_code == 400
    assert assert_cloudevent_answer(answer)["reason"].endswith("ce-id")


async def test_other_methods_are_refused_without_a_body(
    serve: Callable[[str], Any],
) -> None:
    async with client_for(serve("sli-calculator")) as client:
        answer = await client.get("/")

    assert (answer.status_code, answer.content) == (405, b"")
