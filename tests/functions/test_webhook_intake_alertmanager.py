"""A real Alertmanager delivers to webhook-intake served by uvicorn, both on loopback.

Alertmanager (Debian's 0.25) listens on 127.0.0.1 with no cluster port; its one
receiver is the function, with a bearer token, short group timings and
``send_resolved``. Alerts are pushed through its API the way Prometheus pushes
them; the events reach a recording sink on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sla.services.alert_intake import label_fingerprint
from tests.support.functions import RecordingSink
from tests.support.webhook import (
    AlertmanagerServer,
    ServedFunction,
    serve_intake,
    stamp,
    wait_until,
)

__all__ = ["serve_intake"]

pytestmark = pytest.mark.slow

DELIVERY_SECONDS = 20.0
"""Alertmanager sends within group_wait (100 ms) and retries a failed notification
with backoff inside the flush's timeout; 20 s leaves room for a loaded machine."""

LABELS = {"alertname": "SLOBurn", "slo": "checkout", "namespace": "shop"}


@pytest.fixture
def alertmanager_for(
    tmp_path: Path,
) -> Iterator[Callable[..., AlertmanagerServer]]:
    started: list[AlertmanagerServer] = []

    def start(function: ServedFunction, **timings: str) -> AlertmanagerServer:
        server = AlertmanagerServer(tmp_path, webhook_url=function.url, **timings)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def prometheus_alert(*, starts_at: datetime, ends_at: datetime | None = None) -> Any:
    body: dict[str, Any] = {
        "labels": LABELS,
        "annotations": {"summary": "checkout burns its budget"},
        "startsAt": stamp(starts_at),
        "generatorURL": "http://prometheus.example:9090/graph",
    }
    if ends_at is not None:
        body["endsAt"] = stamp(ends_at)
    return body


def event_ids(sink: RecordingSink) -> list[str]:
    return sorted(sink.ids())


def test_firing_then_resolved_reach_the_sink_once_each(
    serve_intake: Callable[..., ServedFunction],
    alertmanager_for: Callable[..., AlertmanagerServer],
    sink: RecordingSink,
) -> None:
    """repeat_interval 1s makes Alertmanager resend the firing notification
    several times before it is resolved: the resends emit nothing."""
    function = serve_intake()
    alertmanager = alertmanager_for(function, repeat_interval="1s")
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    fingerprint = label_fingerprint(LABELS)
    firing = f"alert/{fingerprint}/firing/{stamp(started)}"
    resolved = f"alert/{fingerprint}/resolved/{stamp(started)}"

    alertmanager.push([prometheus_alert(starts_at=started)])
    wait_until(
        lambda: function.answers()[200] >= 3,
        timeout=DELIVERY_SECONDS,
        message=f"Alertmanager did not resend:\n{alertmanager.log()}",
    )
    assert event_ids(sink) == [firing]

    alertmanager.push([prometheus_alert(starts_at=started, ends_at=datetime.now(UTC))])
    wait_until(
        lambda: len(sink.ids()) >= 2,
        timeout=DELIVERY_SECONDS,
        message=f"the resolution did not arrive:\n{alertmanager.log()}",
    )

    assert event_ids(sink) == sorted([firing, resolved])
    assert set(function.answers()) == {200}
    events = {event.id: event.data() for event in sink.events()}
    assert events[firing]["slo"] == "shop/checkout"
    assert events[firing]["endsAt"] is None
    assert events[resolved]["status"] == "resolved"


def test_fingerprint_computed_from_labels_is_alertmanagers(
    serve_intake: Callable[..., ServedFunction],
    alertmanager_for: Callable[..., AlertmanagerServer],
) -> None:
    """Label sets with non-ASCII values and names sorting by byte order."""
    alertmanager = alertmanager_for(serve_intake())
    label_sets = [
        {"alertname": "A"},
        {"alertname": "Ünïcode", "zone": "eu-west-1", "Zeta": "upper first"},
        {"alertname": "B", "empty_looking": " ", "job": "api", "instance": "x:9090"},
    ]
    now = datetime.now(UTC)

    alertmanager.push(
        [{"labels": labels, "startsAt": stamp(now)} for labels in label_sets]
    )

    with httpx.Client(trust_env=False, timeout=5) as client:
        listed = client.get(f"{alertmanager.url}/api/v2/alerts").json()
    computed = {label_fingerprint(item["labels"]): item["labels"] for item in listed}
    assert sorted(item["fingerprint"] for item in listed) == sorted(computed)
    assert len(listed) == len(label_sets)


def test_sink_down_alertmanager_retries_and_every_event_arrives_once(
    serve_intake: Callable[..., ServedFunction],
    alertmanager_for: Callable[..., AlertmanagerServer],
    sink: RecordingSink,
) -> None:
    function = serve_intake()
    alertmanager = alertmanager_for(function)
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    names = ["CheckoutErrors", "CheckoutLatency", "SearchErrors"]
    sink.stop()

    alertmanager.push(
        [
            {"labels": {"alertname": name, "team": "shop"}, "startsAt": stamp(started)}
            for name in names
        ]
    )
    wait_until(
        lambda: function.answers()[503] >= 2,
        timeout=DELIVERY_SECONDS,
        message=f"Alertmanager did not retry:\n{alertmanager.log()}",
    )
    assert sink.ids() == []
    sink.start()
    wait_until(
        lambda: len(sink.ids()) >= len(names),
        timeout=DELIVERY_SECONDS,
        message=f"no events after the sink came back:\n{alertmanager.log()}",
    )

    expected = sorted(
        f"alert/{label_fingerprint({'alertname': n, 'team': 'shop'})}/firing/"
        f"{stamp(started)}"
        for n in names
    )
    assert event_ids(sink) == expected
    assert function.answers()[200] >= 1
