"""From an Alertmanager notification to ``dev.sla.alert.received`` events, once each.

- One event per alert. Its id is ``alert/<fingerprint>/<status>/<startsAt>``: the
  same alert in the same state, resent by Alertmanager (a retry, the next
  ``group_interval`` or ``repeat_interval``, or a notification to a sibling group),
  gets the same id, while the alert's resolution, or its firing again later with a
  new ``startsAt``, is a new fact with a new id.
- The fingerprint is the one Alertmanager computes from the labels
  (``labelSetToFingerprint`` in prometheus/common: FNV-1a 64 over the label names in
  byte order, each name and value followed by the byte 0xff). A missing one (old or
  hand-written bodies) is computed here, so an alert gets the same id whether or
  not its sender wrote it; one that disagrees with the labels cannot have come from
  Alertmanager (bodies copied by hand repeat one fingerprint over different alerts)
  and is replaced by the computed one, so distinct alerts keep distinct ids.
- The SLO an alert names: label ``slo``, else ``sloth_slo``, else ``slo_name``;
  a value with a ``/`` is ``namespace/name`` already, any other needs the alert's
  ``namespace`` label. Both parts must be Kubernetes object names (an
  SLODefinition's are), which also keeps the key safe in the ``subject`` header.
  Nothing usable: null.
- Passing on (:func:`pass_on`): the ids are claimed in the store in one statement,
  the events of the claimed ones are posted, and only then recorded as processed.
  An id processed before is dropped (a resend emits nothing new); an id another
  request holds is reported busy, for the caller to answer "retry". If the post
  fails, the claims are released and the error goes up: nothing is recorded, so
  Alertmanager's retry posts every event again.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sla.clients.alert_claims import AlertClaims
from sla.errors import SLAError
from sla.model.alertmanager import WebhookAlert, WebhookPayload
from sla.model.events import AlertReceived

SLO_LABELS: Final = ("slo", "sloth_slo", "slo_name")
"""Labels that name an SLO, in the order they are trusted (sli-calculator reads
the same ones)."""

FNV_OFFSET: Final = 14695981039346656037
FNV_PRIME: Final = 1099511628211
"""FNV-1a 64-bit constants (prometheus/common ``model/fnv.go``)."""

LABEL_SEPARATOR: Final = 0xFF
"""``model.SeparatorByte``: cannot occur in UTF-8, so no two label sets collide by
concatenation."""

_MASK: Final = (1 << 64) - 1

OBJECT_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""A Kubernetes object name (DNS-1123 subdomain), as SLODefinitions are named."""


@dataclass(frozen=True)
class ReceivedAlert:
    """One alert as it is passed on: its event id, data and occurrence time."""

    id: str
    data: AlertReceived

    @property
    def occurred_at(self) -> datetime:
        """When the fact happened: the start of a firing alert, the end of a
        resolved one (its start if it carries no end)."""
        if self.data.status == "resolved" and self.data.ends_at is not None:
            return self.data.ends_at
        return self.data.starts_at


@dataclass(frozen=True)
class Notification:
    """A notification's distinct alerts, and how many fingerprints were replaced."""

    alerts: Sequence[ReceivedAlert]
    replaced_fingerprints: int = 0


@dataclass(frozen=True)
class IntakeResult:
    """What became of a notification's alerts."""

    emitted: Sequence[ReceivedAlert]
    duplicates: int
    busy: int


Post = Callable[[Sequence[ReceivedAlert]], Awaitable[None]]


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, as 16 hex digits."""
    separator = bytes([LABEL_SEPARATOR])
    hashed = b"".join(
        name.encode() + separator + labels[name].encode() + separator
        for name in sorted(labels)
    )
    # FNV-1a: xor the byte in, then multiply, modulo 2**64 as Go's uint64 does.
    digest = FNV_OFFSET
    for byte in hashed:
        digest = ((digest ^ byte) * FNV_PRIME) & _MASK
    return f"{digest:016x}"


def alert_event_id(fingerprint: str, status: str, starts_at: datetime) -> str:
    """Deterministic id of one alert in one state."""
    stamp = starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f"alert/{fingerprint}/{status}/{stamp}"


def named_slo(labels: Mapping[str, str]) -> str | None:
    """The ``namespace/name`` of the SLO an alert's labels name, or None."""
    for label in SLO_LABELS:
        value = labels.get(label, "").strip()
        if not value:
            continue
        namespace, slash, name = value.rpartition("/")
        if not slash:
            namespace = labels.get("namespace", "").strip()
        if _object_name(namespace) and _object_name(name):
            return f"{namespace}/{name}"
    return None


def _object_name(text: str) -> bool:
    return OBJECT_NAME.fullmatch(text) is not None


def received_alerts(payload: WebhookPayload, *, received_at: datetime) -> Notification:
    """One entry per distinct alert of the notification, in its order."""
    alerts: dict[str, ReceivedAlert] = {}
    replaced = 0
    for alert in payload.alerts:
        fingerprint = label_fingerprint(alert.labels)
        if alert.fingerprint is not None and alert.fingerprint != fingerprint:
            replaced += 1
        received = _received(alert, fingerprint=fingerprint, received_at=received_at)
        # Alertmanager never repeats an alert in one notification; a body that
        # does is sending one fact twice, and one event says it.
        alerts.setdefault(received.id, received)
    return Notification(list(alerts.values()), replaced_fingerprints=replaced)


async def pass_on(
    alerts: Sequence[ReceivedAlert],
    *,
    claims: AlertClaims,
    post: Post,
    lease_seconds: float,
) -> IntakeResult:
    """Post the events of alerts not passed on before; record them once posted."""
    batch = await claims.claim(
        [alert.id for alert in alerts], lease_seconds=lease_seconds
    )
    fresh = [alert for alert in alerts if alert.id in batch.claimed]
    claimed = [alert.id for alert in fresh]
    try:
        await post(fresh)
        await claims.record(claimed)
    except BaseException:
        # A claim left behind expires with its lease anyway; the first failure
        # is the one worth reporting.
        with contextlib.suppress(SLAError):
            await claims.release(claimed)
        raise
    return IntakeResult(
        emitted=fresh, duplicates=len(batch.processed), busy=len(batch.busy)
    )


def _received(
    alert: WebhookAlert, *, fingerprint: str, received_at: datetime
) -> ReceivedAlert:
    data = AlertReceived(
        status=alert.status,
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        fingerprint=fingerprint,
        generator_url=alert.generator_url,
        slo=named_slo(alert.labels),
        received_at=received_at,
    )
    return ReceivedAlert(
        id=alert_event_id(fingerprint, alert.status, alert.starts_at), data=data
    )
