"""Posting events to the broker ingress that Knative's SinkBinding names in K_SINK.

A reply carries one event; a handler that emits more has them posted here, in binary
mode, concurrently but bounded, each retried with backoff on a connection failure,
429 or 5xx. If any of them cannot be delivered, :class:`SinkUnavailable` is raised
and the function answers 5xx, so the broker redelivers the triggering event and the
events are posted again with the same ids (consumers drop the repeats).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final, Protocol

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from sla.errors import SLAError

CONCURRENCY: Final = 16
"""Posts in flight at once: the broker ingress answers each in milliseconds, and 16
keeps a shard of 500 events to a few dozen round trips without flooding it."""

ATTEMPTS: Final = 4
RETRY_SECONDS: Final = 20.0
"""No retry starts later than this: past it the broker's own redelivery, with its
longer backoff, is the better retry."""

TIMEOUT_SECONDS: Final = 10.0

# Statuses worth another try: the ingress answers 429 when throttling and 5xx while
# the broker or Kafka is unavailable. Any other refusal means the event is wrong.
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})


class SinkUnavailable(SLAError):
    """Some events could not be posted to K_SINK; the trigger should be retried."""


class Postable(Protocol):
    @property
    def id(self) -> str: ...

    def to_http(self) -> tuple[dict[str, str], bytes]: ...


class _Transient(Exception):
    """A failed post worth retrying; never leaves the module."""


class EventSink:
    """Posts events to one URL; ``close`` it when done."""

    def __init__(
        self,
        url: str | None,
        *,
        concurrency: int = CONCURRENCY,
        attempts: int = ATTEMPTS,
        timeout: float = TIMEOUT_SECONDS,
        backoff: float = 0.2,
    ) -> None:
        self.url = url
        self._semaphore = asyncio.Semaphore(concurrency)
        self._attempts = attempts
        self._backoff = backoff
        # No proxies from the environment: the ingress is inside the cluster.
        self._http = httpx.AsyncClient(
            timeout=timeout,
            trust_env=False,
            limits=httpx.Limits(max_connections=concurrency),
        )

    async def post(self, events: Sequence[Postable]) -> None:
        """Post every event; raise SinkUnavailable naming how many failed."""
        if not events:
            return
        if self.url is None:
            raise SinkUnavailable(
                f"{len(events)} event(s) to post but K_SINK is not set"
            )
        outcomes = await asyncio.gather(
            *(self._post_one(event) for event in events), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise SinkUnavailable(
                f"{len(failures)} of {len(events)} event(s) not delivered to the "
                f"sink: {failures[0]}"
            )

    async def close(self) -> None:
        await self._http.aclose()

    async def _post_one(self, event: Postable) -> None:
        headers, body = event.to_http()
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self._attempts) | stop_after_delay(RETRY_SECONDS),
            wait=wait_exponential(multiplier=self._backoff, max=2.0)
            + wait_random(0, self._backoff),
            reraise=True,
        )
        async with self._semaphore:
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._send(headers, body)
            except _Transient as error:
                raise SinkUnavailable(f"event {event.id}: {error}") from error

    async def _send(self, headers: dict[str, str], body: bytes) -> None:
        assert self.url is not None
        try:
            response = await self._http.post(self.url, headers=headers, content=body)
        except httpx.TransportError as error:
            raise _Transient(type(error).__name__) from error
        if response.status_code in _TRANSIENT_STATUS:
            raise _Transient(f"the sink answered {response.status_code}")
        if not response.is_success:
            raise SinkUnavailable(f"the sink refused an event: {response.status_code}")
