"""What every served function shares, whatever it takes in.

The health paths (``/healthz/live`` answers while the process runs,
``/healthz/ready`` once the store answers), the count of requests in flight, the
plain function functions-framework serves, and a close that lets in-flight work
finish before the clients go.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sla.errors import SLAError
from sla.runtime.dependencies import Dependencies

LIVE_PATH: Final = "/healthz/live"
READY_PATH: Final = "/healthz/ready"
SHUTDOWN_SECONDS: Final = 30.0
"""Knative's default termination grace: in-flight work gets this long at shutdown."""


class Served:
    """A function behind functions-framework's ``http`` signature.

    Subclasses answer requests in ``_handle`` and may add to ``_readiness``;
    ``post_only`` answers other methods 405 before they reach ``_handle``.
    """

    post_only = False

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self._in_flight = 0
        self._idle: asyncio.Event | None = None

    async def handler(self, request: Request) -> Response:
        """functions-framework's ``http`` target: health checks, then the work."""
        path = request.url.path
        if path == LIVE_PATH:
            return Response(status_code=204)
        if path == READY_PATH:
            return await self._readiness()
        if self.post_only and request.method != "POST":
            return Response(status_code=405, headers={"allow": "POST"})
        self._in_flight += 1
        try:
            return await self._handle(request)
        finally:
            self._in_flight -= 1
            if not self._in_flight and self._idle is not None:
                self._idle.set()

    def target(self) -> Callable[[Request], Awaitable[Response]]:
        """The plain function functions-framework serves (it takes nothing else)."""

        async def handler(request: Request) -> Response:
            return await self.handler(request)

        handler.__qualname__ = handler.__name__
        return handler

    async def aclose(self, *, grace: float = SHUTDOWN_SECONDS) -> None:
        """Wait for requests in flight (up to ``grace`` seconds), then close the
        clients. The server has stopped taking requests by then."""
        if self._in_flight:
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        await self.deps.aclose()

    async def _readiness(self) -> Response:
        try:
            store = await self.deps.store()
            await store.ping()
        except SLAError as error:
            return not_ready(str(error))
        return Response(status_code=204)

    async def _handle(self, request: Request) -> Response:
        raise NotImplementedError


async def read_body(
    request: Request, *, max_bytes: int, too_large: Callable[[int], Exception]
) -> bytes:
    """The body, refused with ``too_large(max_bytes)`` as soon as it is over the
    limit: by its declared length before reading, or while it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def not_ready(reason: str) -> Response:
    return JSONResponse({"ready": False, "reason": reason}, status_code=503)
