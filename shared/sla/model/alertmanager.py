"""Alertmanager's webhook body (payload version 4), as webhook-intake accepts it.

Alertmanager posts one JSON object per notification of an alert group::

    {"version": "4", "receiver", "status", "groupKey", "truncatedAlerts",
     "groupLabels", "commonLabels", "commonAnnotations", "externalURL",
     "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt",
                 "generatorURL", "fingerprint"}]}

What is accepted, decided against the bodies real receivers captured:

- ``version`` must be ``"4"`` when present (every Alertmanager since 0.8 writes
  it); a body without it is read as version 4, since the fields used here are the
  same. Another version is refused: its shape is not known.
- Each alert needs ``status`` (``firing`` or ``resolved``), at least one label
  and ``startsAt``: the event's id is made of them. ``fingerprint`` may be missing
  (bodies written by hand or by old tools); the receiver then derives it from the
  labels as Alertmanager does. ``endsAt`` may be missing; Go's zero time
  (``0001-01-01T00:00:00Z``, what Alertmanager writes for a firing alert) means
  "not ended" and becomes null.
- The group's own fields (``receiver``, ``status``, ``groupKey`` …) are optional:
  nothing is derived from them but the log line.
- Fields Alertmanager may add later are ignored; a field of the wrong type is
  refused (no number read as a label value, no number read as a time).

No I/O here: the model only says whether a body is well formed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)
from pydantic.alias_generators import to_camel

PAYLOAD_VERSION: Final = "4"

GO_ZERO_TIME: Final = datetime(1, 1, 1, tzinfo=UTC)
"""Go's zero ``time.Time``: Alertmanager's ``endsAt`` of an alert still firing."""

FINGERPRINT: Final = re.compile(r"^[0-9a-f]{16}$")
"""``model.Fingerprint.String()``: 64 bits as 16 lowercase hex digits."""


def _text_only(value: Any) -> Any:
    # Lax datetime parsing would read a number as Unix seconds; Alertmanager
    # always writes RFC 3339 text, so anything else is a wrong body.
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    return value


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("has no time zone; write it with Z or an offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # An offset that pushes year 1 or 9999 out of range.
        raise ValueError("is out of the representable range") from None


Timestamp = Annotated[datetime, BeforeValidator(_text_only), AfterValidator(_in_utc)]
"""An RFC 3339 string with a zone, held as an aware UTC datetime."""


def _utf8(value: str) -> str:
    # JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 encoder
    # (the fingerprint's, the sink's) can write; Alertmanager never sends them.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (a lone surrogate)") from None
    return value


Text = Annotated[StrictStr, AfterValidator(_utf8)]
"""A JSON string that is valid Unicode."""

Labels = dict[Text, Text]


def _ended(value: datetime | None) -> datetime | None:
    return None if value is None or value == GO_ZERO_TIME else value


class _Body(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


class WebhookAlert(_Body):
    """One alert of a notification."""

    status: Literal["firing", "resolved"]
    labels: Annotated[Labels, Field(min_length=1)]
    annotations: Labels = Field(default_factory=dict)
    starts_at: Timestamp
    ends_at: Annotated[Timestamp | None, AfterValidator(_ended)] = None
    generator_url: StrictStr | None = Field(default=None, alias="generatorURL")
    # Any text: the fingerprint is recomputed from the labels (Alertmanager's own
    # hash), so one odd value must not refuse the rest of the notification.
    fingerprint: Annotated[StrictStr, Field(max_length=256)] | None = None


class WebhookPayload(_Body):
    """A notification: one alert group's alerts and what they have in common."""

    version: Literal["4"] = PAYLOAD_VERSION
    receiver: Text = ""
    status: Literal["firing", "resolved"] | None = None
    alerts: list[WebhookAlert]
    group_labels: Labels = Field(default_factory=dict)
    common_labels: Labels = Field(default_factory=dict)
    common_annotations: Labels = Field(default_factory=dict)
    external_url: Text | None = Field(default=None, alias="externalURL")
    group_key: Text = ""
    truncated_alerts: Annotated[StrictInt, Field(ge=0)] = 0
