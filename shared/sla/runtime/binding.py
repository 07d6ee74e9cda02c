"""CloudEvents over HTTP: reading a delivered event, writing one in binary mode.

Reading accepts both content modes of the HTTP protocol binding (CloudEvents 1.0):
binary (attributes in ``ce-*`` headers, ``data`` as the body, JSON) and structured
(``application/cloudevents+json``). Every way an event can be wrong becomes an
:class:`EventRejected` carrying the HTTP status to answer with and a reason that
names the attribute or field, never the payload:

    413  the body is larger than ``max_bytes``
    415  a content type that is neither JSON nor a structured CloudEvent; batches
    400  not a CloudEvent, missing attributes, a body that is not JSON, a ``time``
         that is not RFC 3339, data that fails its model

Writing always uses binary mode with ``content-type: application/json``: the SDK's
binary conversion leaves the header out unless ``datacontenttype`` is set, and a
reply without it is not a CloudEvent to the broker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar

from cloudevents.conversion import to_binary
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http
from pydantic import BaseModel, RootModel, ValidationError

from sla.errors import SLAError
from sla.model.base import error_message

JSON: Final = "application/json"
STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"

MAX_EVENT_BYTES: Final = 1024 * 1024
"""Kafka's default ``message.max.bytes`` is about 1 MiB, so the Kafka broker cannot
deliver an event larger than this; a bigger body did not come through it."""

REQUIRED_ATTRIBUTES: Final = ("specversion", "id", "source", "type")

Mode = Literal["binary", "structured"]
Data = TypeVar("Data", bound=BaseModel)


class EventRejected(SLAError):
    """An event that cannot be handled as delivered; ``status`` is the answer.

    ``retryable`` is False for 4xx answers other than 429: the broker sends such an
    event to its dead-letter sink instead of trying again.
    """

    def __init__(self, status: int, reason: str, *, field: str | None = None) -> None:
        self.status = status
        self.reason = reason
        self.field = field
        super().__init__(f"{status}: {reason}")

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class RawEvent:
    """An event whose envelope was read but whose data is not validated yet."""

    attributes: Mapping[str, Any]
    data: bytes | None
    mode: Mode

    @property
    def id(self) -> str:
        return str(self.attributes["id"])

    @property
    def source(self) -> str:
        return str(self.attributes["source"])

    @property
    def type(self) -> str:
        return str(self.attributes["type"])


class JsonData(RootModel[dict[str, Any]]):
    """Event data that is already a JSON object (the services hand events over
    as plain dicts), for :class:`OutgoingEvent`."""


@dataclass(frozen=True)
class OutgoingEvent:
    """An event to reply with or to post: attributes plus a pydantic ``data``."""

    type: str
    source: str
    id: str
    data: BaseModel
    subject: str | None = None
    time: datetime | None = None

    def to_http(self) -> tuple[dict[str, str], bytes]:
        """Headers and body of the event in binary mode, ``content-type`` set."""
        return binary_http(self.record())

    def record(self) -> dict[str, Any]:
        """The event as JSON-ready attributes and data, as the store keeps it."""
        attributes: dict[str, Any] = {
            "specversion": "1.0",
            "type": self.type,
            "source": self.source,
            "id": self.id,
            "datacontenttype": JSON,
        }
        if self.subject is not None:
            attributes["subject"] = self.subject
        # Written here, in RFC 3339 with Z, and kept with the stored answer: the SDK
        # would otherwise stamp the posting time with +00:00, anew on every repost.
        attributes["time"] = _rfc3339(self.time or datetime.now(UTC))
        data = self.data.model_dump(mode="json", by_alias=True)
        return {"attributes": attributes, "data": data}


@dataclass(frozen=True)
class StoredReply:
    """A reply or outgoing event read back from the store, ready to send again."""

    record: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["attributes"]["id"])

    def to_http(self) -> tuple[dict[str, str], bytes]:
        return binary_http(self.record)


def binary_http(record: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """Binary-mode headers and body of a stored event record."""
    body = json.dumps(record["data"], separators=(",", ":")).encode()
    event = CloudEvent(dict(record["attributes"]), data=body)
    headers, payload = to_binary(event, data_marshaller=_as_is)
    return {name.lower(): str(value) for name, value in headers.items()}, payload


def read_event(
    headers: Mapping[str, str], body: bytes, *, max_bytes: int = MAX_EVENT_BYTES
) -> RawEvent:
    """The envelope of a delivered event; EventRejected says why it is not one."""
    if len(body) > max_bytes:
        raise too_large(max_bytes)
    lowered = {name.lower(): value for name, value in headers.items()}
    declared = media_type(lowered.get("content-type", ""))
    if declared == STRUCTURED:
        return _read_structured(lowered, body)
    if declared == BATCH:
        raise EventRejected(415, "batched CloudEvents are not accepted; send one")
    present = [name for name in REQUIRED_ATTRIBUTES if f"ce-{name}" in lowered]
    if present:
        return _read_binary(lowered, body, declared, present)
    if declared and not _is_json(declared):
        raise EventRejected(415, f"content type {declared} is not a CloudEvent")
    raise EventRejected(
        400,
        "not a CloudEvent: no ce-specversion, ce-id, ce-source and ce-type headers "
        f"and content type is not {STRUCTURED}",
    )


def too_large(max_bytes: int) -> EventRejected:
    return EventRejected(413, f"the body is larger than {max_bytes} bytes")


def validate_data(raw: RawEvent, model: type[Data]) -> Data:
    """The event's data as ``model``; 400 naming the first field that fails.

    A ``version`` other than the one the model reads is refused before anything
    else: a newer producer's data must not be half-understood.
    """
    if raw.data is None or not raw.data.strip():
        payload: Any = {}
    else:
        try:
            payload = json.loads(raw.data)
        except ValueError as error:
            raise EventRejected(
                400, f"data is not JSON: {error}", field="data"
            ) from None
    _check_version(payload, model)
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise _data_rejection(error, empty=not raw.data) from None


def _check_version(payload: Any, model: type[BaseModel]) -> None:
    field = model.model_fields.get("version")
    if field is None or not isinstance(payload, dict) or "version" not in payload:
        return
    known, given = field.default, payload["version"]
    if isinstance(known, int) and given != known:
        # Only a number is shown: a reason never quotes what the sender wrote.
        shown = given if isinstance(given, int) else "that is not a number"
        raise EventRejected(
            400,
            f"data.version {shown} is not known; this function reads version {known}",
            field="data.version",
        )


def event_time(raw: RawEvent) -> datetime | None:
    """The ``time`` attribute as an aware datetime, None when it was not sent."""
    text = raw.attributes.get("time")
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise EventRejected(
            400, "attribute time is not an RFC 3339 timestamp", field="time"
        ) from None
    if moment.tzinfo is None:
        raise EventRejected(400, "attribute time has no time zone", field="time")
    return moment


def _read_structured(headers: Mapping[str, str], body: bytes) -> RawEvent:
    try:
        envelope = json.loads(body)
    except ValueError as error:
        raise EventRejected(400, f"the body is not JSON: {error}") from None
    if not isinstance(envelope, dict):
        raise EventRejected(400, "a structured CloudEvent must be a JSON object")
    _require(envelope.keys(), prefix="")
    content_type = media_type(str(envelope.get("datacontenttype") or JSON))
    if not _is_json(content_type):
        raise EventRejected(415, f"datacontenttype {content_type} is not JSON")
    event = _sdk_parse(headers, body)
    attributes = _attributes(event)
    if envelope.get("time") is None:
        # The SDK stamps an event without a time with the current one; "no time"
        # must stay visible, or a tick without one would be evaluated at "now".
        attributes.pop("time", None)
    data = event.get_data()
    if isinstance(data, str):
        data = data.encode()
    return RawEvent(attributes, None if data in (None, b"null") else data, "structured")


def _read_binary(
    headers: Mapping[str, str], body: bytes, media_type: str, present: list[str]
) -> RawEvent:
    _require([f"ce-{name}" for name in present], prefix="ce-")
    if body.strip() and not _is_json(media_type):
        shown = media_type or "no content type"
        raise EventRejected(415, f"{shown} is not accepted; data must be {JSON}")
    if body.strip():
        try:
            json.loads(body)
        except ValueError as error:
            raise EventRejected(
                400, f"data is not JSON: {error}", field="data"
            ) from None
    event = _sdk_parse(headers, body)
    attributes = _attributes(event)
    if "ce-time" not in headers:
        attributes.pop("time", None)
    return RawEvent(attributes, body or None, "binary")


def _require(names: Any, *, prefix: str) -> None:
    seen = {name.removeprefix(prefix) for name in names}
    missing = [name for name in REQUIRED_ATTRIBUTES if name not in seen]
    if missing:
        listed = ", ".join(f"{prefix}{name}" for name in missing)
        raise EventRejected(
            400, f"required attributes missing: {listed}", field=missing[0]
        )


def _sdk_parse(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    try:
        return from_http(dict(headers), body, data_unmarshaller=_as_is)
    except GenericException as error:
        # The SDK's messages can quote the whole body; keep only its kind.
        raise EventRejected(
            400, f"not a valid CloudEvent ({type(error).__name__})"
        ) from None


def _attributes(event: CloudEvent) -> dict[str, Any]:
    attributes = dict(event.get_attributes())
    for name in REQUIRED_ATTRIBUTES:
        if not isinstance(attributes.get(name), str) or not attributes[name]:
            raise EventRejected(
                400, f"attribute {name} must be a non-empty string", field=name
            )
    return attributes


def _data_rejection(error: ValidationError, *, empty: bool) -> EventRejected:
    if empty:
        return EventRejected(400, "data is missing", field="data")
    first = error.errors(include_input=False, include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "data"
    count = error.error_count()
    more = f" (and {count - 1} more problem(s))" if count > 1 else ""
    return EventRejected(
        400,
        f"data.{location}: {error_message(first)}{more}",
        field=f"data.{location}",
    )


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, lowercase, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == JSON or media_type.endswith("+json")


def _as_is(value: Any) -> Any:
    return value


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
