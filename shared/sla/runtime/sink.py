"""Posting events to the broker ingress that Knative's SinkBinding names in K_SINK.

A reply carries one event; a handler that emits more has them posted here, one
event per request (the ingress takes no batches), in binary mode, concurrently but
bounded, each retried with backoff on a connection failure, a timeout, 429 or 5xx.
If any of them cannot be delivered, :class:`SinkUnavailable` is raised and the
function answers 5xx, so the broker redelivers the triggering event and the events
are posted again with the same ids (consumers drop the repeats).

The client is aiohttp's: a post costs a sixth to a tenth of the CPU of httpx's,
and posting is most of what webhook-intake does per alert. It is imported and
opened on the first post, inside the serving loop (a session belongs to the loop
that opened it), so a function that never posts never pays for it. Retries are
tenacity's, set up only once a first attempt has failed: the first try of every
event is a plain request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Protocol

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from sla.errors import SLAError

if TYPE_CHECKING:
    import aiohttp

CONCURRENCY: Final = 16
"""Posts in flight at once: the broker ingress answers each in milliseconds, and 16
keeps a shard of 500 events to a few dozen round trips without flooding it."""

ATTEMPTS: Final = 4
RETRY_SECONDS: Final = 20.0
"""No retry starts later than this: past it the broker's own redelivery, with its
longer backoff, is the better retry."""

TIMEOUT_SECONDS: Final = 10.0
"""The longest one post may take, from connecting to the end of the answer."""

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
    """Posts events to one URL; ``close`` it when done (it can be used again)."""

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
        self._concurrency = concurrency
        self._attempts = attempts
        self._timeout = timeout
        self._backoff = backoff
        self._http: aiohttp.ClientSession | None = None

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
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def _post_one(self, event: Postable) -> None:
        headers, body = event.to_http()
        async with self._semaphore:
            started = time.monotonic()
            try:
                await self._send(headers, body)
            except _Transient as first:
                try:
                    await self._retry(headers, body, first, started=started)
                except _Transient as error:
                    raise SinkUnavailable(f"event {event.id}: {error}") from error

    async def _retry(
        self,
        headers: dict[str, str],
        body: bytes,
        first: _Transient,
        *,
        started: float,
    ) -> None:
        """Try again after ``first`` failed, with tenacity's policy over every
        attempt: the first one's failure is handed to it as its attempt 1, so the
        attempt count, the backoff and the deadline are those of a single loop."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self._attempts)
            | stop_after_delay(max(0.0, RETRY_SECONDS - (time.monotonic() - started))),
            wait=wait_exponential(multiplier=self._backoff, max=2.0)
            + wait_random(0, self._backoff),
            reraise=True,
        )
        failed: _Transient | None = first
        async for attempt in retrying:
            with attempt:
                if failed is not None:
                    error, failed = failed, None
                    raise error
                await self._send(headers, body)

    async def _send(self, headers: dict[str, str], body: bytes) -> None:
        import aiohttp

        assert self.url is not None
        try:
            async with self._client().post(
                self.url, headers=headers, data=body
            ) as response:
                # Read to the end, so that the connection is kept for the next post.
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _Transient(type(error).__name__) from error
        status = response.status
        if status in _TRANSIENT_STATUS:
            raise _Transient(f"the sink answered {status}")
        if not 200 <= status < 300:
            raise SinkUnavailable(f"the sink refused an event: {status}")

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            import aiohttp

            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                # No proxies from the environment: the ingress is inside the cluster.
                trust_env=False,
            )
        return self._http
