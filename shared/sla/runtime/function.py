"""The CloudEvent adapter every function is served through.

A function module declares what it accepts and exports one coroutine for
functions-framework's ``http`` signature (served in ASGI mode)::

    function = Function(
        "sli-calculator",
        accepts=[Accept(PING, on_tick, sources=ping_source("sla-tick"))],
    )
    handler = function.target()

An accepted event reaches its handler as a :class:`Delivery` with validated data;
the handler returns an :class:`Outcome`: the events it emits, the writes that make
its work durable, and what to log. The adapter turns that into the answer:

- no event: ``202`` with an empty body;
- one event: ``200`` with that event in binary mode as the reply;
- more: all posted to ``K_SINK`` (binary mode, bounded, retried), then ``202``.

Delivery rules (DESIGN.md, "Delivery rules every function obeys"):

- A redelivered event (same source and id) is claimed once in the store; the work
  and the record of its answer are committed in one transaction, so a repeat gets
  the stored answer and its outgoing events are posted again with the same ids.
  A handler whose events depend on what it reads and writes in the store returns
  an :class:`Outcome` with ``decide``: that work runs inside the same transaction
  and its events are known only there, so a crash or a rollback leaves no decision
  without its recorded answer, and no recorded answer without its decision.
  The claim is kept per function (``<function> <source>``): two functions consume
  the same ``budget.calculated`` event, and each must do its own work once.
- 400 for an event that can never succeed, 413 for a body over the limit, 415 for a
  content type that is not a CloudEvent, 429 while another worker holds the claim,
  503 when the store, a datasource, the Kubernetes API or the sink is unavailable,
  500 for any other failure; 2xx only once the work is committed.
- A non-2xx answer is never plain text: its body is a ``dev.sla.event.rejected``
  CloudEvent in binary mode whose data says why (status, reason, field). The broker
  never routes a non-2xx reply, but its dead-letter sink keeps the body
  (``knativeerrordata``), so the reason travels with the dead letter.

Work metrics (:mod:`sla.runtime.metrics`) are added to the store in the same
transaction: every emitted event as ``sla_events_published_total{outcome="ok"}``,
plus the handler's own ``Outcome.counts``; a repeat counts nothing again. A post
to ``K_SINK`` that fails is counted as ``outcome="error"`` on its own, best effort.

Paths: ``/healthz/live`` answers 204 while the process runs, ``/healthz/ready``
204 once the store answers (503 otherwise); every other path takes events.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from sla.clients.store import Increment, ProcessedEvent, Store
from sla.errors import (
    DatasourceUnavailable,
    KubeUnavailable,
    SLAError,
    StoreUnavailable,
)
from sla.model.events import (
    EVENT_DATA,
    EVENT_REJECTED,
    EventRejection,
    function_source,
)
from sla.runtime import metrics
from sla.runtime.binding import (
    MAX_EVENT_BYTES,
    EventRejected,
    OutgoingEvent,
    RawEvent,
    StoredReply,
    event_time,
    read_event,
    too_large,
    validate_data,
)
from sla.runtime.dependencies import Dependencies
from sla.runtime.logs import FIELDS, configure_logging
from sla.runtime.serving import Served, read_body
from sla.runtime.settings import Settings, SettingsError, load_settings
from sla.runtime.sink import SinkUnavailable

DEFAULT_LEASE_SECONDS: Final = 60.0
"""How long a claim on an event holds: longer than a handler's work, so a second
delivery waits (429) instead of doing the work twice."""

LOGGED_SLOS: Final = 20
"""SLO keys written into one log line; the rest are counted, not listed."""

_TRANSIENT: Final = (
    StoreUnavailable,
    DatasourceUnavailable,
    KubeUnavailable,
    SinkUnavailable,
)

logger = logging.getLogger("sla.events")

Data = TypeVar("Data", bound=BaseModel)


@dataclass(frozen=True)
class SourceRule:
    """Which ``source`` attributes a type is accepted from; ``pattern`` None: any."""

    description: str
    pattern: re.Pattern[str] | None = None

    def matches(self, source: str) -> bool:
        return self.pattern is None or self.pattern.fullmatch(source) is not None


ANY_SOURCE: Final = SourceRule("any source")


def ping_source(name: str) -> SourceRule:
    """The PingSource ``name`` in any namespace (Knative's source attribute is
    ``/apis/v1/namespaces/<namespace>/pingsources/<name>``)."""
    pattern = re.compile(
        rf"/apis/v1/namespaces/[a-z0-9]([-a-z0-9]*[a-z0-9])?/pingsources/"
        rf"{re.escape(name)}"
    )
    return SourceRule(f"PingSource {name}", pattern)


def from_function(name: str) -> SourceRule:
    """Events emitted by one of the system's functions."""
    return SourceRule(name, re.compile(re.escape(function_source(name))))


def from_functions(*names: str) -> SourceRule:
    """Events emitted by any of these functions."""
    pattern = "|".join(re.escape(function_source(name)) for name in names)
    return SourceRule(" or ".join(names), re.compile(pattern))


@dataclass(frozen=True)
class Delivery(Generic[Data]):
    """An accepted event, as a handler sees it."""

    id: str
    source: str
    type: str
    time: datetime | None
    subject: str | None
    data: Data
    received_at: datetime
    function: str
    deps: Dependencies

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    def emit(
        self,
        event_type: str,
        *,
        id: str,
        data: BaseModel,
        subject: str | None = None,
        time: datetime | None = None,
    ) -> OutgoingEvent:
        """An event from this function (``source`` is ``/sla/<function>``)."""
        return OutgoingEvent(
            type=event_type,
            source=function_source(self.function),
            id=id,
            data=data,
            subject=subject,
            time=time,
        )


Write = Callable[[Store], Awaitable[object]]
After = Callable[[], Awaitable[object]]
Decide = Callable[[Store], Awaitable["Outcome"]]


@dataclass(frozen=True)
class Outcome:
    """What a handler did.

    ``write`` runs inside the transaction that records the event as processed, so
    the work and its answer are durable together; ``after`` runs once that is
    committed (best effort: a failure is logged, the answer stands). ``slos`` and
    ``detail`` go into the log line; ``counts`` are work metrics added in the same
    transaction.

    ``decide``, when set, is work whose events are known only once it has run
    against the store: it runs first inside that transaction, given the
    transaction's store, and the Outcome it returns is the one that stands.
    """

    events: Sequence[OutgoingEvent] = ()
    write: Write | None = None
    after: After | None = None
    slos: Sequence[str] = ()
    detail: str = ""
    counts: Sequence[Increment] = ()
    decide: Decide | None = None

    def touches_store(self) -> bool:
        return bool(self.decide or self.write or self.counts or self.events)

    def work_counts(self) -> list[Increment]:
        """The handler's counts and one published event per emitted event."""
        return [*self.counts, *metrics.published(e.type for e in self.events)]


Handler = Callable[[Delivery[Any]], Awaitable[Outcome]]


@dataclass(frozen=True)
class Accept:
    """One event type a function takes: from where, with which data, handled how.

    ``data`` defaults to the catalogue's model for the type. ``remember`` False
    skips the processed-event bookkeeping, for handlers idempotent on their own.
    """

    event_type: str
    handler: Handler
    sources: SourceRule = ANY_SOURCE
    data: type[BaseModel] | None = None
    remember: bool = True

    @property
    def model(self) -> type[BaseModel]:
        return self.data or EVENT_DATA[self.event_type]


@dataclass
class _LogLine:
    fields: dict[str, Any] = field(default_factory=dict)

    def event(self, raw: RawEvent) -> None:
        self.fields.update(event_id=raw.id, event_type=raw.type, source=raw.source)

    def outcome(self, outcome: Outcome) -> None:
        slos = list(outcome.slos)
        if slos:
            self.fields["slos"] = slos[:LOGGED_SLOS]
            self.fields["slo_count"] = len(slos)
        if outcome.detail:
            self.fields["detail"] = outcome.detail


class Function(Served):
    """One function: its accepted events and the adapter that serves them."""

    post_only = True

    def __init__(
        self,
        name: str,
        *,
        accepts: Iterable[Accept],
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_body_bytes: int = MAX_EVENT_BYTES,
        settings: Settings | None = None,
    ) -> None:
        self.name = name
        self.settings = settings if settings is not None else settings_or_exit(name)
        configure_logging(self.settings.log_level)
        super().__init__(Dependencies(self.settings))
        self.accepts = {accept.event_type: accept for accept in accepts}
        self.lease_seconds = lease_seconds
        self.max_body_bytes = max_body_bytes

    # -- one event ----------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        started = time.monotonic()
        line = _LogLine({"function": self.name})
        raw: RawEvent | None = None
        try:
            body = await read_body(
                request, max_bytes=self.max_body_bytes, too_large=too_large
            )
            raw = read_event(request.headers, body, max_bytes=self.max_body_bytes)
            line.event(raw)
            answer, label = await self._accept(raw, line)
        except Exception as error:
            answer, label = self._failure(error, raw, line)
        line.fields.update(
            outcome=label,
            status=answer.status_code,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        level = logging.INFO if answer.status_code < 500 else logging.ERROR
        logger.log(level, "event %s", label, extra={FIELDS: line.fields})
        return answer

    async def _accept(self, raw: RawEvent, line: _LogLine) -> tuple[Response, str]:
        accept = self._accept_for(raw)
        data = validate_data(raw, accept.model)
        delivery: Delivery[Any] = Delivery(
            id=raw.id,
            source=raw.source,
            type=raw.type,
            time=event_time(raw),
            subject=_optional(raw.attributes.get("subject")),
            data=data,
            received_at=datetime.now(UTC),
            function=self.name,
            deps=self.deps,
        )
        if not accept.remember:
            outcome = await accept.handler(delivery)
            return await self._without_record(outcome, line)
        return await self._exactly_once(accept, delivery, line)

    def _accept_for(self, raw: RawEvent) -> Accept:
        accept = self.accepts.get(raw.type)
        if accept is None:
            known = ", ".join(sorted(self.accepts))
            raise EventRejected(
                400,
                f"{self.name} does not take events of type {raw.type}; it takes "
                f"{known}",
                field="type",
            )
        if not accept.sources.matches(raw.source):
            raise EventRejected(
                400,
                f"{self.name} takes {raw.type} only from "
                f"{accept.sources.description}, not from {raw.source}",
                field="source",
            )
        return accept

    async def _exactly_once(
        self, accept: Accept, delivery: Delivery[Any], line: _LogLine
    ) -> tuple[Response, str]:
        store = await self.deps.store()
        key = self._claim_key(delivery.source)
        claim = await store.claim_event(
            key, delivery.id, lease_seconds=self.lease_seconds
        )
        if claim.status == "busy":
            raise EventRejected(429, "another worker is handling this event now")
        if claim.processed is not None:
            return await self._answer(claim.processed), "duplicate"
        try:
            outcome = await accept.handler(delivery)
            line.outcome(outcome)
            async with store.transaction() as tx:
                outcome = await _settled(outcome, tx)
                reply, posts = _split(outcome.events)
                stored = await tx.record_event(
                    key,
                    delivery.id,
                    reply=None if reply is None else reply.record(),
                    outgoing=[event.record() for event in posts],
                )
                # Last: the counter rows are shared by every worker, so their
                # locks are held for the commit only.
                await tx.add_to_counters(outcome.work_counts())
        except BaseException:
            await _release(store, key, delivery.id)
            raise
        line.outcome(outcome)
        await self._after(outcome)
        answer = await self._answer(stored)
        return answer, "replied" if stored.reply else "accepted"

    async def _without_record(
        self, outcome: Outcome, line: _LogLine
    ) -> tuple[Response, str]:
        if outcome.touches_store():
            store = await self.deps.store()
            async with store.transaction() as tx:
                outcome = await _settled(outcome, tx)
                await tx.add_to_counters(outcome.work_counts())
        line.outcome(outcome)
        await self._after(outcome)
        reply, posts = _split(outcome.events)
        await self._post(posts)
        if reply is None:
            return Response(status_code=202), "accepted"
        return _event_response(200, reply.to_http()), "replied"

    async def _answer(self, processed: ProcessedEvent) -> Response:
        await self._post([StoredReply(r) for r in processed.outgoing])
        if processed.reply is None:
            return Response(status_code=202)
        return _event_response(200, StoredReply(processed.reply).to_http())

    async def _post(self, events: Sequence[OutgoingEvent | StoredReply]) -> None:
        """Post to K_SINK; a failed post is counted (the broker will redeliver)."""
        try:
            await self.deps.sink.post(events)
        except SinkUnavailable:
            types = [_event_type(event) for event in events]
            await _count_quietly(self.deps, metrics.published(types, outcome="error"))
            raise

    async def _after(self, outcome: Outcome) -> None:
        if outcome.after is None:
            return
        try:
            await outcome.after()
        except Exception:
            logger.warning("follow-up after commit failed", exc_info=True)

    def _claim_key(self, source: str) -> str:
        return f"{self.name} {source}"

    # -- failures -----------------------------------------------------------------

    def _failure(
        self, error: Exception, raw: RawEvent | None, line: _LogLine
    ) -> tuple[Response, str]:
        rejected = _as_rejection(error)
        if rejected.field:
            line.fields["field"] = rejected.field
        line.fields["reason"] = rejected.reason
        if rejected.status >= 500 and not isinstance(error, _TRANSIENT):
            logger.error("handler failed", exc_info=error, extra={FIELDS: line.fields})
        label = (
            "busy"
            if rejected.status == 429
            else "failed"
            if rejected.retryable
            else "rejected"
        )
        return self._rejection_response(rejected, raw), label

    def _rejection_response(
        self, rejected: EventRejected, raw: RawEvent | None
    ) -> Response:
        data: BaseModel = EventRejection(
            status=rejected.status,
            reason=rejected.reason,
            field=rejected.field,
            retryable=rejected.retryable,
            event_type=None if raw is None else raw.type,
            event_source=None if raw is None else raw.source,
            event_id=None if raw is None else raw.id,
        )
        event = OutgoingEvent(
            type=EVENT_REJECTED,
            source=function_source(self.name),
            id=f"{raw.id}/rejected" if raw is not None else str(uuid.uuid4()),
            data=data,
            time=datetime.now(UTC),
        )
        response = _event_response(rejected.status, event.to_http())
        if rejected.status in (429, 503):
            response.headers["retry-after"] = "10"
        return response


def settings_or_exit(name: str) -> Settings:
    """The settings, or the process stops with a message naming each bad one."""
    try:
        return load_settings()
    except SettingsError as error:
        print(f"{name}: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _as_rejection(error: Exception) -> EventRejected:
    if isinstance(error, EventRejected):
        return error
    if isinstance(error, _TRANSIENT):
        return EventRejected(503, f"{type(error).__name__}: {error}")
    if isinstance(error, SLAError):
        return EventRejected(500, f"{type(error).__name__}: {error}")
    return EventRejected(500, f"internal error ({type(error).__name__})")


def _split(
    events: Sequence[OutgoingEvent],
) -> tuple[OutgoingEvent | None, Sequence[OutgoingEvent]]:
    """One event is the reply; more go to the sink, and the reply stays empty."""
    if len(events) == 1:
        return events[0], ()
    return None, events


async def _settled(outcome: Outcome, tx: Store) -> Outcome:
    """The outcome that stands: ``decide`` run in ``tx`` if set, then ``write``."""
    if outcome.decide is not None:
        outcome = await outcome.decide(tx)
        if outcome.decide is not None:
            raise TypeError("a decided Outcome must not ask to decide again")
    if outcome.write is not None:
        await outcome.write(tx)
    return outcome


def _event_type(event: OutgoingEvent | StoredReply) -> str:
    if isinstance(event, OutgoingEvent):
        return event.type
    return str(event.record["attributes"]["type"])


async def _count_quietly(deps: Dependencies, increments: Sequence[Increment]) -> None:
    # Best effort: the answer is already a failure; a lost count must not change it.
    try:
        await (await deps.store()).add_to_counters(increments)
    except SLAError:
        logger.warning("could not count %d failed posts", len(increments))


async def _release(store: Store, key: str, event_id: str) -> None:
    # Best effort: an unreleased claim expires with its lease anyway.
    try:
        await store.release_claim(key, event_id)
    except SLAError:
        logger.warning("could not release the claim on %s", event_id)


def _event_response(status: int, http: tuple[dict[str, str], bytes]) -> Response:
    headers, body = http
    return Response(content=body, status_code=status, headers=headers)


def _optional(value: object) -> str | None:
    return None if value is None else str(value)
