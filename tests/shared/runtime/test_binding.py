"""CloudEvents over HTTP: reading both content modes, writing binary mode."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sla.model.events import BUDGET_CALCULATED, SloEvaluate
from sla.model.snapshot import BudgetSnapshot
from sla.runtime.binding import (
    EventRejected,
    OutgoingEvent,
    event_time,
    read_event,
    validate_data,
)
from tests.support.snapshots import budget_snapshot

AT = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)


def test_an_outgoing_event_reads_back_as_the_same_event() -> None:
    snapshot = budget_snapshot("shop/api", AT)
    event = OutgoingEvent(
        type=BUDGET_CALCULATED,
        source="/sla/sli-calculator",
        id=snapshot.snapshot_id,
        data=snapshot,
        subject="shop/api",
        time=AT,
    )

    headers, body = event.to_http()
    raw = read_event(headers, body)

    assert headers["content-type"] == "application/json"
    assert headers["ce-time"] == "2026-01-03T12:00:00Z"
    assert (raw.mode, raw.id, raw.type) == (
        "binary",
        "shop/api@2026-01-03T12:00:00Z",
        BUDGET_CALCULATED,
    )
    assert validate_data(raw, BudgetSnapshot) == snapshot
    assert event_time(raw) == AT


def test_a_structured_event_without_time_has_no_time() -> None:
    """The SDK would stamp it with the current time; the adapter keeps it absent."""
    envelope = {"specversion": "1.0", "type": "t", "source": "/s", "id": "1"}
    headers = {"Content-Type": "application/cloudevents+json"}

    raw = read_event(headers, json.dumps(envelope).encode())

    assert raw.mode == "structured"
    assert raw.data is None
    assert event_time(raw) is None


def test_structured_data_is_validated_like_binary_data() -> None:
    envelope = {
        "specversion": "1.0",
        "type": "dev.sla.slo.evaluate",
        "source": "/sla/sli-calculator",
        "id": "1",
        "data": {
            "slos": ["a/b"],
            "evaluated_at": "2026-01-03T12:00:30Z",
            "shard": 0,
            "shards": 1,
        },
    }
    raw = read_event(
        {"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode()
    )

    with pytest.raises(EventRejected) as refused:
        validate_data(raw, SloEvaluate)

    assert refused.value.status == 400
    assert refused.value.field == "data.evaluated_at"
    assert "whole minute" in refused.value.reason


def test_a_data_error_reads_as_the_validator_wrote_it() -> None:
    raw = read_event(
        {
            "ce-specversion": "1.0",
            "ce-type": "dev.sla.slo.evaluate",
            "ce-source": "/sla/sli-calculator",
            "ce-id": "1",
            "content-type": "application/json",
        },
        json.dumps(
            {
                "slos": ["a/b"],
                "evaluated_at": "2026-01-03T12:00:30Z",
                "shard": 0,
                "shards": 1,
            }
        ).encode(),
    )

    with pytest.raises(EventRejected) as refused:
        validate_data(raw, SloEvaluate)

    assert refused.value.reason == (
        "data.evaluated_at: must be on a whole minute, as a tick's time is"
    )


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param({"content-type": "text/plain"}, b"hi", 415, id="plain-text"),
        pytest.param({}, b"", 400, id="nothing"),
        pytest.param(
            {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s"},
            b"",
            400,
            id="no-id",
        ),
        pytest.param(
            {"content-type": "application/cloudevents+json"}, b"[1]", 400, id="array"
        ),
    ],
)
def test_what_is_not_a_cloudevent_is_refused(
    headers: dict[str, str], body: bytes, status: int
) -> None:
    with pytest.raises(EventRejected) as refused:
        read_event(headers, body)

    assert refused.value.status == status


def test_a_body_over_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(EventRejected) as refused:
        read_event({}, b"x" * 11, max_bytes=10)

    assert refused.value.status == 413


def test_a_reason_never_quotes_the_payload() -> None:
    secret = "hunter2-token-value"
    headers = {"content-type": "application/cloudevents+json"}

    with pytest.raises(EventRejected) as refused:
        read_event(headers, json.dumps({"specversion": "9.9", "id": secret}).encode())

    assert secret not in refused.value.reason
