"""schemathesis against budget-api's own OpenAPI document: no answer is a 5xx, and
every answer matches the document (status codes, content types, schemas).

The app is served by uvicorn on 127.0.0.1 in a thread of the test process, the way
functions-framework serves it; examples are bounded and derandomised so the run
takes seconds and repeats exactly.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sla.clients.store import Store
from tests.support.budget_api import (
    AUTH,
    TOKEN,
    policy_object,
    seed_objects,
    served_on_loopback,
    slo_object,
    snapshot,
)
from tests.support.functions import function_env, load_function

EXAMPLES_PER_OPERATION = 30
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


def exercise(base_url: str) -> list[str]:
    """Every operation with generated requests; the names of those exercised."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    exercised = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(base_url=base_url, headers=AUTH)
            case.validate_response(response, checks=CHECKS)

        check()
        exercised.append(operation.label)
    return exercised


async def test_no_generated_request_gets_a_5xx_or_an_undocumented_answer(
    monkeypatch: pytest.MonkeyPatch, database_url: str, schema_name: str, store: Store
) -> None:
    await seed_objects(
        store,
        slo_object("payments", "checkout"),
        policy_object("payments", "release-gate", ["checkout"]),
    )
    await store.put_snapshots([snapshot("payments/checkout", 0.25)])
    function_env(
        monkeypatch,
        database_url=database_url,
        schema=schema_name,
        SLA_API_TOKEN=TOKEN,
    )
    module, app = load_function("budget-api")

    with served_on_loopback(app, module.function.aclose) as base_url:
        exercised = await asyncio.to_thread(exercise, base_url)

    assert {
        "GET /slos",
        "GET /slos/{namespace}/{name}",
        "GET /slos/{namespace}/{name}/history",
        "GET /freezes",
        "GET /audit",
        "GET /metrics",
        "GET /",
        "POST /freezes/{namespace}/{policy}/override",
        "DELETE /freezes/{namespace}/{policy}/override",
    } <= set(exercised)
