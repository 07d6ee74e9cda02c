"""``sla serve`` and ``sla apply`` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sla.cli import main
from sla.clients.store import Store
from tests.support.functions import REPOSITORY, binary_event
from tests.support.servers import free_port

SLA = str(Path(sys.executable).parent / "sla")
TICK_SOURCE = "/apis/v1/namespaces/sla-system/pingsources/sla-tick"
START_SECONDS = 30.0


def serve(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [SLA, "serve", "sli-calculator", "--port", str(port)],
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_")}
    env.update(settings)
    return env


def first_answer(port: int, process: subprocess.Popen[bytes]) -> httpx.Response:
    headers, body = binary_event(
        "dev.knative.sources.ping",
        source=TICK_SOURCE,
        id="serve-1",
        time="2026-01-03T00:00:00Z",
    )
    deadline = time.monotonic() + START_SECONDS
    with httpx.Client(trust_env=False, timeout=5) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                return client.post(
                    f"http://127.0.0.1:{port}/", headers=headers, content=body
                )
            except httpx.TransportError:
                time.sleep(0.02)
    raise AssertionError("sla serve did not answer")


@pytest.mark.slow
def test_serve_answers_events_and_stops_cleanly_on_sigterm(
    database_url: str, schema_name: str
) -> None:
    asyncio.run(_create(database_url, schema_name))
    port = free_port()
    process = serve(
        port, environment(SLA_DATABASE_URL=f"{database_url}?search_path={schema_name}")
    )
    try:
        answer = first_answer(port, process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)

    assert answer.status_code == 202
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in stderr.decode()


def test_a_wrong_setting_stops_the_function_at_start_naming_it() -> None:
    process = serve(free_port(), environment(SLA_EVALUATION_SHARD_SIZE="0"))
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "SLA_EVALUATION_SHARD_SIZE='0'" in stderr.decode()
    assert "Traceback" not in stderr.decode()


def test_apply_loads_definitions_into_the_catalogue(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(_create(database_url, schema_name))
    monkeypatch.setenv("SLA_DATABASE_URL", f"{database_url}?search_path={schema_name}")
    examples = str(REPOSITORY / "examples")

    first = main(["apply", examples])
    again = main(["apply", examples])

    assert (first, again) == (0, 0)
    output = capsys.readouterr().out.splitlines()
    assert output[0].startswith("applied: 3 written, 0 unchanged")
    assert output[1] == "applied: 0 written, 3 unchanged"
    rows = asyncio.run(_catalogue(database_url, schema_name))
    assert {(row.kind, row.key, row.source, row.generation) for row in rows} == {
        ("SLODefinition", "shop/checkout-availability", "file", 1),
        ("SLODefinition", "shop/checkout-latency", "file", 1),
        ("SLAPolicy", "shop/checkout-freeze", "file", 1),
    }


async def _create(url: str, schema: str) -> None:
    store = await Store.open(url, schema=schema, pool_size=1)
    await store.close()


async def _catalogue(url: str, schema: str) -> list[object]:
    store = await Store.open(url, schema=schema, pool_size=1)
    try:
        return list(await store.list_catalogue())
    finally:
        await store.close()
