"""Posting events to K_SINK: each once, retried while the sink is unavailable."""

from __future__ import annotations

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
