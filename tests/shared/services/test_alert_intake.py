"""The alert logic of webhook-intake without HTTP: ids, fingerprints, SLO names,
and passing on through the store's claims."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sla.clients.alert_claims import AlertClaims
from sla.clients.store import Store
from sla.model.alertmanager import WebhookPayload
from sla.runtime.sink import SinkUnavailable
from sla.services.alert_intake import (
    ReceivedAlert,
    alert_event_id,
    label_fingerprint,
    named_slo,
    pass_on,
    received_alerts,
)

RECEIVED = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)
SOURCE = "webhook-intake dev.sla.alert.received"


def payload(*alerts: dict[str, object]) -> WebhookPayload:
    return WebhookPayload.model_validate({"version": "4", "alerts": list(alerts)})


def firing(name: str, **extra: object) -> dict[str, object]:
    return {
        "status": "firing",
        "labels": {"alertname": name},
        "startsAt": "2026-01-05T10:00:00Z",
        **extra,
    }


def test_fingerprint_of_no_labels_is_the_fnv_offset_basis() -> None:
    """Nothing hashed: FNV-1a 64's offset basis, 14695981039346656037."""
    assert label_fingerprint({}) == f"{14695981039346656037:016x}"
    assert label_fingerprint({}) == "cbf29ce484222325"


def test_fingerprint_does_not_depend_on_label_order() -> None:
    assert label_fingerprint({"a": "1", "b": "2"}) == label_fingerprint(
        {"b": "2", "a": "1"}
    )


def test_fingerprint_separates_names_from_values() -> None:
    """The 0xff separator: {"ab": "c"} and {"a": "bc"} do not collide."""
    assert label_fingerprint({"ab": "c"}) != label_fingerprint({"a": "bc"})


def test_event_id_is_the_same_instant_whatever_the_offset() -> None:
    utc = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    paris = datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=1)))

    assert alert_event_id("0123456789abcdef", "firing", utc) == (
        "alert/0123456789abcdef/firing/2026-01-05T09:00:00Z"
    )
    assert alert_event_id("0123456789abcdef", "firing", paris) == (
        alert_event_id("0123456789abcdef", "firing", utc)
    )


@pytest.mark.parametrize(
    ("labels", "slo"),
    [
        pytest.param(
            {"slo": "checkout", "namespace": "shop"}, "shop/checkout", id="slo"
        ),
        pytest.param({"slo": "shop/checkout"}, "shop/checkout", id="qualified"),
        pytest.param(
            {"slo": "", "sloth_slo": "availability", "namespace": "shop"},
            "shop/availability",
            id="empty-slo-then-sloth",
        ),
        pytest.param(
            {"slo": "a", "slo_name": "b", "namespace": "n"}, "n/a", id="slo-first"
        ),
        pytest.param({"slo_name": "b"}, None, id="no-namespace"),
        pytest.param({"slo": "Checkout", "namespace": "shop"}, None, id="upper-case"),
        pytest.param({"slo": "a/b/c"}, None, id="two-slashes"),
        pytest.param({"slo": "shop/"}, None, id="no-name"),
        pytest.param({"slo": "x\ny", "namespace": "shop"}, None, id="newline"),
        pytest.param({"alertname": "DiskFull"}, None, id="none"),
    ],
)
def test_named_slo(labels: dict[str, str], slo: str | None) -> None:
    assert named_slo(labels) == slo


def test_fingerprint_disagreeing_with_the_labels_is_replaced() -> None:
    """Two alerts carrying one copied fingerprint stay two events."""
    copied = "dd19ae3d4e06ac55"
    body = payload(firing("A", fingerprint=copied), firing("B", fingerprint=copied))

    notification = received_alerts(body, received_at=RECEIVED)

    assert notification.replaced_fingerprints == 2
    assert [alert.data.fingerprint for alert in notification.alerts] == [
        label_fingerprint({"alertname": "A"}),
        label_fingerprint({"alertname": "B"}),
    ]


def test_resolved_alert_occurs_at_its_end() -> None:
    body = payload(
        {
            "status": "resolved",
            "labels": {"alertname": "A"},
            "startsAt": "2026-01-05T10:00:00Z",
            "endsAt": "2026-01-05T10:20:00Z",
        }
    )

    (alert,) = received_alerts(body, received_at=RECEIVED).alerts

    assert alert.occurred_at == datetime(2026, 1, 5, 10, 20, tzinfo=UTC)
    assert alert.data.received_at == RECEIVED


class Recorder:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.posted: list[str] = []

    async def __call__(self, alerts: Sequence[ReceivedAlert]) -> None:
        if self.fail:
            raise SinkUnavailable("the sink answered 503")
        self.posted += [alert.id for alert in alerts]


async def test_pass_on_posts_once_and_releases_claims_when_the_post_fails(
    store: Store,
) -> None:
    claims = AlertClaims(store, source=SOURCE, retention_days=35)
    alerts = received_alerts(payload(firing("A"), firing("B")), received_at=RECEIVED)

    with pytest.raises(SinkUnavailable):
        await pass_on(
            alerts.alerts, claims=claims, post=Recorder(fail=True), lease_seconds=60
        )
    recorder = Recorder()
    first = await pass_on(alerts.alerts, claims=claims, post=recorder, lease_seconds=60)
    second = await pass_on(
        alerts.alerts, claims=claims, post=recorder, lease_seconds=60
    )

    assert len(first.emitted) == 2
    assert (len(second.emitted), second.duplicates, second.busy) == (0, 2, 0)
    assert sorted(recorder.posted) == sorted(alert.id for alert in alerts.alerts)
