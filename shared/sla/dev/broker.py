"""A local broker for ``sla dev``: Knative Eventing's behaviour on one machine.

Its ingress takes CloudEvents as the Kafka broker's does (binary or structured,
``202`` once accepted). Each event goes to every Trigger whose filter matches, in
binary mode; a reply event in the answer is put back into the broker; a failed
delivery is retried with the Trigger's (or the Broker's) delivery spec and then
written, with the reason, as one JSON line to the dead-letter file. Events bound
for a KafkaSink are appended to ``topics/<topic>.jsonl``, where a person (or a
test) can read what the cluster would have published.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
from starlette.requests import Request
from starlette.responses import Response

from sla.dev.manifests import Mesh, Trigger, matches
from sla.runtime.binding import EventRejected, RawEvent, binary_http, read_event

logger = logging.getLogger(__name__)

# Knative's dispatcher retries these answers; any other 4xx goes to dead letters.
RETRYABLE_STATUS: Final = frozenset({404, 408, 409, 429})
DELIVERY_TIMEOUT_SECONDS: Final = 60.0
IN_FLIGHT: Final = 16


@dataclass
class BrokerStats:
    accepted: int = 0
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    replies: int = 0
    by_trigger: dict[str, int] = field(default_factory=dict)


class LocalBroker:
    """Routes events by the mesh's Triggers to the functions' URLs."""

    def __init__(
        self,
        mesh: Mesh,
        *,
        subscribers: Mapping[str, str],
        state_dir: Path,
    ) -> None:
        self.mesh = mesh
        self.subscribers = dict(subscribers)
        self.state_dir = state_dir
        self.stats = BrokerStats()
        self._http = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_SECONDS)
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        (state_dir / "topics").mkdir(parents=True, exist_ok=True)

    @property
    def dead_letter_file(self) -> Path:
        return self.state_dir / "dead-letters.jsonl"

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        """The ingress, as an ASGI app: POST a CloudEvent, get 202."""
        request = Request(scope, receive)
        if scope["type"] != "http":
            return
        if request.method != "POST":
            await Response(status_code=405)(scope, receive, send)
            return
        body = await request.body()
        try:
            event = read_event(dict(request.headers), body)
        except EventRejected as rejected:
            response = Response(
                json.dumps({"error": rejected.reason}),
                status_code=rejected.status,
                media_type="application/json",
            )
            await response(scope, receive, send)
            return
        self.publish(event)
        await Response(status_code=202)(scope, receive, send)

    def publish(self, event: RawEvent) -> None:
        """Accept an event and start delivering it to every matching Trigger."""
        self.stats.accepted += 1
        for trigger in self.mesh.triggers:
            if matches(trigger, event.attributes):
                task = asyncio.create_task(self._deliver(trigger, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every delivery in flight has finished (replies included)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._http.aclose()

    # -- delivery -----------------------------------------------------------------

    async def _deliver(self, trigger: Trigger, event: RawEvent) -> None:
        if trigger.subscriber.startswith("kafkasink:"):
            self._to_topic(trigger, event)
            return
        url = self._url(trigger.subscriber)
        delivery = trigger.delivery or self.mesh.delivery
        for attempt in range(delivery.retry + 1):
            if attempt:
                self.stats.retried += 1
                await asyncio.sleep(delivery.delay(attempt))
            verdict, reason = await self._attempt(trigger, url, event)
            if verdict == "delivered":
                return
            if verdict == "final":
                break
        self._dead_letter(trigger, event, reason, attempts=attempt + 1)

    async def _attempt(
        self, trigger: Trigger, url: str | None, event: RawEvent
    ) -> tuple[str, str]:
        """One delivery: ``delivered``, ``retry`` or ``final``, and why."""
        if url is None:
            return "retry", f"no subscriber runs for {trigger.subscriber!r}"
        headers, body = _binary(event)
        try:
            async with self._slots:
                response = await self._http.post(url, headers=headers, content=body)
        except httpx.HTTPError as error:
            return "retry", f"{type(error).__name__}: {error}"
        if 200 <= response.status_code < 300:
            self.stats.delivered += 1
            counts = self.stats.by_trigger
            counts[trigger.name] = counts.get(trigger.name, 0) + 1
            self._reinject(response)
            return "delivered", ""
        reason = f"HTTP {response.status_code}: {_reason(response)}"
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            return "retry", reason
        # A 4xx that no retry can fix goes straight to the dead letters.
        return "final", reason

    def _reinject(self, response: httpx.Response) -> None:
        if "ce-id" not in response.headers and not response.headers.get(
            "content-type", ""
        ).startswith("application/cloudevents+json"):
            return
        try:
            reply = read_event(dict(response.headers), response.content)
        except EventRejected as rejected:
            logger.warning("a reply was not a CloudEvent: %s", rejected.reason)
            return
        self.stats.replies += 1
        self.publish(reply)

    def _url(self, subscriber: str) -> str | None:
        if subscriber.startswith(("http://", "https://")):
            return subscriber
        return self.subscribers.get(subscriber)

    # -- files a person can read --------------------------------------------------

    def _to_topic(self, trigger: Trigger, event: RawEvent) -> None:
        sink = trigger.subscriber.removeprefix("kafkasink:")
        topic = self.mesh.topics.get(sink, sink)
        self._append(self.state_dir / "topics" / f"{topic}.jsonl", _record(event))
        counts = self.stats.by_trigger
        counts[trigger.name] = counts.get(trigger.name, 0) + 1

    def _dead_letter(
        self, trigger: Trigger, event: RawEvent, reason: str, *, attempts: int
    ) -> None:
        self.stats.dead_lettered += 1
        logger.warning(
            "dead letter: %s %s to %s: %s", event.type, event.id, trigger.name, reason
        )
        entry = {
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "trigger": trigger.name,
            "subscriber": trigger.subscriber,
            "attempts": attempts,
            "reason": reason,
            "event": _record(event),
        }
        self._append(self.dead_letter_file, entry)

    @staticmethod
    def _append(path: Path, entry: Mapping[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry, separators=(",", ":")) + "\n")


def _reason(response: httpx.Response) -> str:
    """The rejection's reason: the functions answer 4xx/5xx with a CloudEvent."""
    if "ce-type" in response.headers:
        try:
            return str(json.loads(response.content).get("reason", response.text))
        except (ValueError, AttributeError):
            pass
    return response.text[:500]


def _data(event: RawEvent) -> Any:
    if event.data is None:
        return None
    try:
        return json.loads(event.data)
    except ValueError:
        return event.data.decode("utf-8", "replace")


def _record(event: RawEvent) -> dict[str, Any]:
    return {"attributes": dict(event.attributes), "data": _data(event)}


def _binary(event: RawEvent) -> tuple[dict[str, str], bytes]:
    attributes = {k: v for k, v in event.attributes.items() if v is not None}
    attributes.setdefault("datacontenttype", "application/json")
    data = _data(event)
    return binary_http(
        {"attributes": attributes, "data": data if data is not None else {}}
    )
