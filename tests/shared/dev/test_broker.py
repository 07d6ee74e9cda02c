"""The local broker routes exactly as the manifests in eventing/ say."""

from __future__ import annotations

import asyncio
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sla.dev.broker import LocalBroker
from sla.dev.manifests import Delivery, Mesh, iso_seconds, load_mesh, matches
from sla.dev.pings import PingScheduler
from sla.runtime.binding import RawEvent

EVENTING = Path(__file__).resolve().parents[3] / "eventing"
FUNCTIONS = (
    "sli-calculator",
    "policy-evaluator",
    "freeze-enforcer",
    "slo-catalog",
    "webhook-intake",
)


@dataclass
class Subscriber:
    """A function stand-in on 127.0.0.1: records events, answers as scripted."""

    statuses: list[int] = field(default_factory=list)
    reply: dict[str, str] | None = None
    received: list[dict[str, str]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def start(self) -> Subscriber:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                owner.received.append({k.lower(): v for k, v in self.headers.items()})
                status = owner.statuses.pop(0) if owner.statuses else 202
                body = b""
                self.send_response(200 if owner.reply and status < 300 else status)
                if owner.reply and status < 300:
                    for name, value in owner.reply.items():
                        self.send_header(f"ce-{name}", value)
                    self.send_header("ce-specversion", "1.0")
                    self.send_header("content-type", "application/json")
                    body = b"{}"
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def types(self) -> list[str]:
        return [headers["ce-type"] for headers in self.received]


@pytest.fixture
def subscribers() -> Iterator[dict[str, Subscriber]]:
    started = {name: Subscriber().start() for name in FUNCTIONS}
    yield started
    for subscriber in started.values():
        subscriber.stop()


def event(event_type: str, *, source: str = "test", id: str = "1") -> RawEvent:
    attributes = {
        "specversion": "1.0",
        "type": event_type,
        "source": source,
        "id": id,
        "datacontenttype": "application/json",
    }
    return RawEvent(attributes, b'{"version": 1}', "binary")


def fast(mesh: Mesh) -> Mesh:
    """The mesh with retries a test can wait for."""
    return Mesh(
        namespace=mesh.namespace,
        triggers=mesh.triggers,
        pings=mesh.pings,
        delivery=Delivery(retry=2, backoff_delay=0.01, dead_letter="dead"),
        topics=mesh.topics,
    )


async def route(
    mesh: Mesh, subscribers: dict[str, Subscriber], tmp_path: Path, *events: RawEvent
) -> LocalBroker:
    broker = LocalBroker(
        fast(mesh),
        subscribers={name: s.url for name, s in subscribers.items()},
        state_dir=tmp_path,
    )
    for one in events:
        broker.publish(one)
    await broker.drain()
    await broker.aclose()
    return broker


def test_manifests_declare_every_subscription() -> None:
    mesh = load_mesh(EVENTING)
    assert mesh.namespace == "sla-system"
    assert {p.name for p in mesh.pings} == {"sla-tick", "sla-relist"}
    assert mesh.delivery.retry == 6
    assert mesh.delivery.backoff_delay == 1.0
    assert iso_seconds("PT0.5S") == 0.5 and iso_seconds("PT2M") == 120


async def test_budget_event_reaches_its_consumers_and_topic(
    subscribers: dict[str, Subscriber], tmp_path: Path
) -> None:
    mesh = load_mesh(EVENTING)
    await route(mesh, subscribers, tmp_path, event("dev.sla.budget.calculated"))
    assert subscribers["policy-evaluator"].types() == ["dev.sla.budget.calculated"]
    assert subscribers["slo-catalog"].types() == ["dev.sla.budget.calculated"]
    assert subscribers["sli-calculator"].types() == []
    topic = (tmp_path / "topics" / "sla.budgets.jsonl").read_text().splitlines()
    assert json.loads(topic[0])["attributes"]["type"] == "dev.sla.budget.calculated"


async def test_removed_trigger_stops_the_delivery(
    subscribers: dict[str, Subscriber], tmp_path: Path
) -> None:
    copy = tmp_path / "eventing"
    shutil.copytree(EVENTING, copy)
    triggers = copy / "triggers.yaml"
    documents = [d for d in yaml.safe_load_all(triggers.read_text()) if d]
    kept = [
        d
        for d in documents
        if d["metadata"]["name"] != "policy-evaluator-budget-calculated"
    ]
    assert len(kept) == len(documents) - 1
    triggers.write_text(yaml.safe_dump_all(kept))
    await route(
        load_mesh(copy), subscribers, tmp_path, event("dev.sla.budget.calculated")
    )
    assert subscribers["policy-evaluator"].types() == []
    assert subscribers["slo-catalog"].types() == ["dev.sla.budget.calculated"]


async def test_pings_are_told_apart_by_source(
    subscribers: dict[str, Subscriber], tmp_path: Path
) -> None:
    mesh = load_mesh(EVENTING)
    tick, relist = sorted(mesh.pings, key=lambda p: p.name != "sla-tick")
    await route(
        mesh,
        subscribers,
        tmp_path,
        event("dev.knative.sources.ping", source=tick.source, id="t"),
        event("dev.knative.sources.ping", source=relist.source, id="r"),
    )
    assert [h["ce-id"] for h in subscribers["sli-calculator"].received] == ["t"]
    assert [h["ce-id"] for h in subscribers["slo-catalog"].received] == ["r"]


async def test_transient_failures_are_retried_then_delivered(
    subscribers: dict[str, Subscriber], tmp_path: Path
) -> None:
    subscribers["freeze-enforcer"].statuses = [503, 500]
    broker = await route(
        load_mesh(EVENTING), subscribers, tmp_path, event("dev.sla.freeze.requested")
    )
    assert len(subscribers["freeze-enforcer"].received) == 3
    assert broker.stats.retried == 2
    assert not broker.dead_letter_file.exists()


async def test_event_that_never_succeeds_is_a_readable_dead_letter(
    subscribers: dict[str, Subscriber], tmp_path: Path
) -> None:
    subscribers["freeze-enforcer"].statuses = [400]
    broker = await route(
        load_mesh(EVENTING), subscribers, tmp_path, event("dev.sla.freeze.requested")
    )
    assert len(subscribers["freeze-enforcer"].received) == 1  # 400: not retried
    [line] = broker.dead_letter_file.read_text().splitlines()
    letter = json.loads(line)
    assert letter["trigger"] == "freeze-enforcer-freeze-requested"
    assert letter["reason"].startswith("HTTP 400")
    assert letter["event"]["attributes"]["type"] == "dev.sla.freeze.requested"


async def test_retries_exhausted_go_to_dead_letters(
    subscribers: dict[str, Subscriber], tmp_path: Path
) -> None:
    subscribers["freeze-enforcer"].statuses = [503, 503, 503]
    broker = await route(
        load_mesh(EVENTING), subscribers, tmp_path, event("dev.sla.freeze.requested")
    )
    assert len(subscribers["freeze-enforcer"].received) == 3  # 1 + 2 retries
    letter = json.loads(broker.dead_letter_file.read_text())
    assert letter["attempts"] == 3 and letter["reason"].startswith("HTTP 503")


async def test_reply_events_are_put_back_into_the_broker(
    subscribers: dict[str, Subscriber], tmp_path: Path
) -> None:
    subscribers["sli-calculator"].reply = {
        "type": "dev.sla.budget.calculated",
        "source": "/sla/functions/sli-calculator",
        "id": "shop/checkout@2026-01-01T00:00:00Z",
    }
    broker = await route(
        load_mesh(EVENTING), subscribers, tmp_path, event("dev.sla.alert.received")
    )
    assert broker.stats.replies == 1
    assert subscribers["policy-evaluator"].types() == ["dev.sla.budget.calculated"]


def test_new_filter_dialects() -> None:
    mesh = load_mesh(EVENTING)
    trigger = mesh.triggers[0]
    dialect = type(trigger)(
        name="d",
        broker="sla",
        attributes={},
        filters=[
            {"prefix": {"type": "dev.sla."}},
            {"not": {"exact": {"type": "dev.sla.freeze.failed"}}},
            {"any": [{"suffix": {"source": "/a"}}, {"exact": {"source": "b"}}]},
        ],
        subscriber="x",
    )
    assert matches(dialect, {"type": "dev.sla.freeze.applied", "source": "x/a"})
    assert not matches(dialect, {"type": "dev.sla.freeze.failed", "source": "b"})
    assert not matches(dialect, {"type": "dev.knative.sources.ping", "source": "b"})


async def test_ping_scheduler_fires_on_a_fast_minute(tmp_path: Path) -> None:
    mesh = load_mesh(EVENTING)
    fired: list[RawEvent] = []
    scheduler = PingScheduler(mesh.pings, fired.append, minute_seconds=0.05)
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.4)
    task.cancel()
    ticks = [e for e in fired if e.source.endswith("/pingsources/sla-tick")]
    relists = [e for e in fired if e.source.endswith("/pingsources/sla-relist")]
    # A tick every 0.05 s over 0.4 s, and a relist only every 0.75 s.
    assert 5 <= len(ticks) <= 8
    assert relists == []
    assert ticks[0].type == "dev.knative.sources.ping"
    stamp = datetime.fromisoformat(
        str(ticks[0].attributes["time"]).replace("Z", "+00:00")
    )
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 5


async def test_ingress_answers_202_and_rejects_what_is_not_a_cloudevent(
    tmp_path: Path,
) -> None:
    broker = LocalBroker(load_mesh(EVENTING), subscribers={}, state_dir=tmp_path)
    transport = httpx.ASGITransport(app=broker.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
        accepted = await client.post(
            "/",
            headers={
                "ce-specversion": "1.0",
                "ce-type": "dev.sla.unrouted",
                "ce-source": "t",
                "ce-id": "1",
                "content-type": "application/json",
            },
            content=b"{}",
        )
        refused = await client.post(
            "/", content=b"hello", headers={"content-type": "text/plain"}
        )
    await broker.aclose()
    assert accepted.status_code == 202
    assert refused.status_code == 415
