"""Posting events to K_SINK: each once, retried while the sink is unavailable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from sla.model.events import BUDGET_CALCULATED
from sla.runtime.binding import OutgoingEvent
from sla.runtime.sink import EventSink, SinkUnavailable
from tests.support.functions import RecordingSink
from tests.support.servers import free_port
from tests.support.snapshots import budget_snapshot

AT = datetime(2026, 1, 3, tzinfo=UTC)


def events(count: int) -> list[OutgoingEvent]:
    return [
        OutgoingEvent(
            type=BUDGET_CALCULATED,
            source="/sla/sli-calculator",
            id=f"e-{index}",
            data=budget_snapshot(f"shop/s{index}", AT),
        )
        for index in range(count)
    ]


async def test_every_event_arrives_once_in_binary_mode(sink: RecordingSink) -> None:
    poster = EventSink(sink.url, concurrency=4)
    try:
        await poster.post(events(50))
    finally:
        await poster.close()

    received = sink.events()
    assert sorted(e.id for e in received) == sorted(f"e-{i}" for i in range(50))
    assert {e.headers["content-type"] for e in received} == {"application/json"}


async def test_a_sink_answering_503_raises_after_the_retries(
    sink: RecordingSink,
) -> None:
    sink.status = 503
    poster = EventSink(sink.url, attempts=2, backoff=0.01)
    try:
        with pytest.raises(SinkUnavailable, match="2 of 2"):
            await poster.post(events(2))
    finally:
        await poster.close()


async def test_a_sink_refusing_connections_raises() -> None:
    poster = EventSink(f"http://127.0.0.1:{free_port()}/", attempts=2, backoff=0.01)
    try:
        with pytest.raises(SinkUnavailable):
            await poster.post(events(1))
    finally:
        await poster.close()


async def test_events_without_a_sink_cannot_be_posted() -> None:
    poster = EventSink(None)
    try:
        with pytest.raises(SinkUnavailable, match="K_SINK is not set"):
            await poster.post(events(2))
        await poster.post([])
    finally:
        await poster.close()


class ScriptedSink:
    """An HTTP/1.1 sink on 127.0.0.1 in the test's loop, keeping connections open:
    it answers each post with the next status of ``script``, then 202, and notes
    every ``ce-id`` it was sent, answered or not. ``silent`` never answers;
    ``drop`` closes the connection after each answer, as an ingress closing idle
    keep-alive connections does, without saying so in the answer."""

    def __init__(
        self, script: Iterable[int] = (), *, silent: bool = False, drop: bool = False
    ) -> None:
        self.script = list(script)
        self.silent = silent
        self.drop = drop
        self.posted: list[str] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                headers = dict(
                    (name.strip().lower(), value.strip())
                    for name, _, value in (
                        line.partition(":")
                        for line in head.decode("latin-1").split("\r\n")[1:]
                    )
                )
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.posted.append(headers.get("ce-id", ""))
                if self.silent:
                    continue
                status = self.script.pop(0) if self.script else 202
                writer.write(
                    b"HTTP/1.1 %d Answer\r\ncontent-length: 0\r\n\r\n" % status
                )
                await writer.drain()
                if self.drop:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def scripted(sink: ScriptedSink) -> AsyncIterator[ScriptedSink]:
    server = await asyncio.start_server(sink.serve, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()


async def test_transient_answers_are_retried_until_the_event_is_accepted() -> None:
    async with scripted(ScriptedSink([503, 429])) as sink:
        poster = EventSink(sink.url, attempts=4, backoff=0.01)
        try:
            await poster.post(events(1))
        finally:
            await poster.close()

    assert sink.posted == ["e-0", "e-0", "e-0"]


async def test_the_first_post_counts_as_an_attempt() -> None:
    async with scripted(ScriptedSink([503] * 10)) as sink:
        poster = EventSink(sink.url, attempts=3, backoff=0.01)
        try:
            with pytest.raises(SinkUnavailable, match=r"1 of 1 .* answered 503"):
                await poster.post(events(1))
        finally:
            await poster.close()

    assert sink.posted == ["e-0"] * 3


async def test_a_single_attempt_is_not_retried() -> None:
    async with scripted(ScriptedSink([503])) as sink:
        poster = EventSink(sink.url, attempts=1, backoff=0.01)
        try:
            with pytest.raises(SinkUnavailable):
                await poster.post(events(1))
        finally:
            await poster.close()

    assert sink.posted == ["e-0"]


async def test_a_refused_event_is_not_retried() -> None:
    async with scripted(ScriptedSink([400])) as sink:
        poster = EventSink(sink.url, attempts=4, backoff=0.01)
        try:
            with pytest.raises(SinkUnavailable, match="refused an event: 400"):
                await poster.post(events(1))
        finally:
            await poster.close()

    assert sink.posted == ["e-0"]


async def test_a_sink_that_does_not_answer_times_out_and_is_retried() -> None:
    async with scripted(ScriptedSink(silent=True)) as sink:
        poster = EventSink(sink.url, attempts=2, timeout=0.2, backoff=0.01)
        started = time.monotonic()
        try:
            with pytest.raises(SinkUnavailable):
                await poster.post(events(1))
        finally:
            await poster.close()

    assert sink.posted == ["e-0", "e-0"]
    assert time.monotonic() - started < 5


async def test_connections_the_sink_closes_between_posts_are_not_a_failure() -> None:
    async with scripted(ScriptedSink(drop=True)) as sink:
        poster = EventSink(sink.url, concurrency=2, attempts=2, backoff=0.01)
        try:
            for event in events(6):
                await poster.post([event])
                await asyncio.sleep(0.01)
        finally:
            await poster.close()

    assert sink.posted == [f"e-{i}" for i in range(6)]


async def test_proxies_from_the_environment_are_not_used(
    sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, nowhere)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    poster = EventSink(sink.url, attempts=1)
    try:
        await poster.post(events(2))
    finally:
        await poster.close()

    assert sorted(sink.ids()) == ["e-0", "e-1"]


async def test_a_closed_sink_posts_again_when_asked(sink: RecordingSink) -> None:
    poster = EventSink(sink.url)
    try:
        await poster.post(events(1))
        await poster.close()
        await poster.post(events(2))
    finally:
        await poster.close()
        await poster.close()

    assert sorted(sink.ids()) == ["e-0", "e-0", "e-1"]
