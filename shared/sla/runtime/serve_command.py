"""``sla serve FUNCTION [--port N]``: one function, served as Knative serves it.

Loads ``functions/<FUNCTION>/main.py`` through functions-framework's ASGI mode with
the ``http`` signature and target ``handler`` (the container's command does the
same), and serves it with uvicorn on 127.0.0.1 unless ``--host`` says otherwise.
Settings come from the environment; a wrong one stops the function at start with a
message naming it (exit 2).

On SIGTERM or Ctrl-C uvicorn stops taking requests and lets those in flight finish
(up to ``--grace`` seconds); then the function closes its store pool and clients.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, Final

EXIT_OK = 0
EXIT_INVALID = 1

DEFAULT_GRACE_SECONDS: Final = 300.0
"""The longest Knative request timeout among the functions (sli-calculator's)."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535, for argparse."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not in 1-65535")
    return port


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("function", metavar="FUNCTION", help="e.g. sli-calculator")
    parser.add_argument(
        "--port", type=port_number, help="listening port (default: PORT, else 8080)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument(
        "--functions",
        type=Path,
        default=Path("functions"),
        metavar="DIR",
        help="the directory holding <FUNCTION>/main.py (default: ./functions)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE_SECONDS,
        help="seconds in-flight events get to finish at shutdown",
    )


def run_serve(args: argparse.Namespace) -> int:
    source = args.functions / args.function / "main.py"
    if not source.is_file():
        known = sorted(p.parent.name for p in args.functions.glob("*/main.py"))
        print(
            f"error: no function {args.function!r} under {args.functions} "
            f"(found: {', '.join(known) or 'none'})",
            file=sys.stderr,
        )
        return EXIT_INVALID
    module, app = load(source)
    function = module.function
    port = args.port or function.settings.port
    serve(
        _Lifespan(app, function.aclose, grace=args.grace), args.host, port, args.grace
    )
    return EXIT_OK


def load(source: Path) -> tuple[Any, Any]:
    """The function module and functions-framework's ASGI app for it."""
    from functions_framework import _function_registry
    from functions_framework.aio import create_asgi_app_from_module

    # functions-framework ships no type hints for these.
    registry: Any = _function_registry
    module, spec = registry.load_function_module(str(source))
    spec.loader.exec_module(module)
    build: Any = create_asgi_app_from_module
    app = build("handler", str(source), "http", module, spec)
    return module, app


def serve(app: Any, host: str, port: int, grace: float) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(grace),
    )
    uvicorn.Server(config).run()


class _Lifespan:
    """Answers the ASGI lifespan protocol around an app that ignores it, closing
    the function's clients at shutdown."""

    def __init__(
        self, app: Any, close: Callable[..., Awaitable[None]], *, grace: float
    ) -> None:
        self._app = app
        self._close = close
        self._grace = grace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self._app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._close(grace=self._grace)
                await send({"type": "lifespan.shutdown.complete"})
                return
