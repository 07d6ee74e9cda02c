"""budget-api's HTTP app: routes, authentication, errors, logs and metrics.

functions-framework serves :meth:`BudgetApi.target` with its ``http`` signature in
ASGI mode, sending every path to it; this module routes by method and path.

Access:

- open: ``/healthz/live``, ``/healthz/ready``, ``/openapi.json``;
- reads (``GET /``, ``/metrics``, ``/slos…``, ``/freezes``, ``/audit``): open while
  ``SLA_API_READ_AUTH=open``, the bearer token when it is ``token``;
- writes (the overrides): always the bearer token (``SLA_API_TOKEN`` or
  ``_FILE``). Without a token configured budget-api still starts, for its reads,
  and answers every write 503 "not configured": a read-only deployment is a
  legitimate choice, an open write never is. ``SLA_API_READ_AUTH=token`` without a
  token stops the function at start.

Every error is JSON ``{"error": message, "field": name or null}``: 400 for a query
parameter or body that cannot be read, 401 for a missing or wrong token, 404 for an
unknown path or object, 405 for a method a path does not take, 409 for an invalid
policy, 413 for a body over :data:`MAX_BODY_BYTES`, 415 for a body declared as
anything but JSON, 422 for a body the request model refuses, 503 while the store or
the sink is unavailable, 500 for anything else.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from sla.clients.cache import BudgetCache
from sla.clients.store import Increment, Store
from sla.errors import SLAError, StoreUnavailable
from sla.model.api import (
    ApiError,
    AuditPage,
    AuditQuery,
    FreezeQuery,
    Freezes,
    History,
    HistoryQuery,
    OverrideClearRequest,
    OverrideRequest,
    OverrideResult,
    SloDetail,
    SloPage,
    SloQuery,
)
from sla.model.base import error_message
from sla.model.events import function_source
from sla.model.freeze import OutgoingEvent as DecisionEvent
from sla.runtime import metrics
from sla.runtime.binding import JsonData, OutgoingEvent, media_type
from sla.runtime.dependencies import Dependencies
from sla.runtime.logs import FIELDS, configure_logging
from sla.runtime.openapi import NAME_PATTERN, Operation, openapi_document
from sla.runtime.serving import LIVE_PATH, READY_PATH, read_body
from sla.runtime.settings import Settings, SettingsError, load_settings
from sla.runtime.sink import SinkUnavailable
from sla.runtime.state_metrics import read_state, state_exposition
from sla.services import budget_api as queries
from sla.services.budget_api import InvalidInput, NotFound, OverrideOutcome
from sla.services.status_page import render_status_page

NAME: Final = "budget-api"
VERSION: Final = "1"


MAX_BODY_BYTES: Final = 64 * 1024
"""An override is a few hundred bytes; anything near this is not one."""

METHODS: Final = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})
"""Method label values; any other method is counted as ``other``."""

OBJECT_NAME: Final = re.compile(NAME_PATTERN.strip("^$"))

logger = logging.getLogger("sla.api")


class ApiProblem(Exception):
    """An answer other than 200, as ``{"error", "field"}``."""

    def __init__(self, status: int, message: str, *, field: str | None = None):
        self.status = status
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Call:
    """A routed request: the request, its path parameters and the clock."""

    request: Request
    params: Mapping[str, str]
    now: datetime
    log: dict[str, Any]


Endpoint = Callable[["BudgetApi", Call], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    operation: Operation
    endpoint: Endpoint
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, operation: Operation, endpoint: Endpoint) -> Route:
        # {name} matches one path segment; literal parts are matched as written.
        parts = re.split(r"(\{[a-z_]+\})", operation.path)
        regex = "".join(
            f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
            for part in parts
        )
        return cls(operation, endpoint, re.compile(regex))


def settings_for_api(settings: Settings | None) -> Settings:
    """The settings, or the process stops naming the wrong one (exit 2)."""
    try:
        loaded = settings if settings is not None else load_settings()
        if loaded.api_read_auth == "token" and loaded.api_token is None:
            raise SettingsError(
                [
                    "SLA_API_READ_AUTH='token': reads need SLA_API_TOKEN or "
                    "SLA_API_TOKEN_FILE, and neither is set"
                ]
            )
    except SettingsError as error:
        print(f"{NAME}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return loaded


def _json_response(model: BaseModel, status: int = 200) -> Response:
    return Response(
        model.model_dump_json(by_alias=True),
        status_code=status,
        media_type="application/json",
    )


def error_response(status: int, message: str, field: str | None = None) -> Response:
    response = _json_response(ApiError(error=message, field=field), status)
    if status == 401:
        response.headers["www-authenticate"] = 'Bearer realm="sla"'
    return response


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def token_matches(given: str | None, expected: str) -> bool:
    """Constant time in the token's content, so timing tells nothing about it."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def parse_query(request: Request, model: type[BaseModel]) -> Any:
    """The query string as ``model``; 400 naming the parameter at fault."""
    lists = {
        name
        for name, info in model.model_fields.items()
        if getattr(info.annotation, "__origin__", None) is list
    }
    values: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise ApiProblem(400, "a NUL character is not allowed", field=name)
        if name in lists:
            values.setdefault(name, []).append(value)
        elif name in values:
            raise ApiProblem(400, f"{name} is given more than once", field=name)
        else:
            values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise _problem(error, status=400) from None


def _object_names(params: dict[str, str]) -> dict[str, str]:
    """Path parameters name catalogue objects; any other text names none (404)."""
    for value in params.values():
        if not OBJECT_NAME.fullmatch(value):
            raise ApiProblem(404, f"{value!r} is not a name any object can have")
    return params


def _problem(error: ValidationError, *, status: int) -> ApiProblem:
    first = error.errors(include_url=False, include_input=False)[0]
    location = [str(part) for part in first["loc"]]
    field = location[0] if location else None
    return ApiProblem(status, error_message(first), field=field)


def _require_json(content_type: str) -> None:
    """A body declared as another type is refused; an undeclared one is read as
    JSON, the only type any endpoint takes."""
    declared = media_type(content_type)
    if declared and declared != JSON:
        raise ApiProblem(415, f"{declared} is not accepted; send {JSON}")


def _too_large(max_bytes: int) -> ApiProblem:
    return ApiProblem(413, f"the body is over {max_bytes} bytes")


async def parse_body(request: Request, model: type[BaseModel]) -> Any:
    """The JSON body as ``model``: 415 if declared as another type, 413 if too
    large, 400 if it is not JSON, 422 if the model refuses."""
    _require_json(request.headers.get("content-type", ""))
    body = await read_body(request, max_bytes=MAX_BODY_BYTES, too_large=_too_large)
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise ApiProblem(422, "the body must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise _problem(error, status=422) from None


class BudgetApi:
    """The app: settings, clients, routes. ``handler`` answers one request."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings_for_api(settings)
        configure_logging(self.settings.log_level)
        self.deps = Dependencies(self.settings)
        self.routes = ROUTES
        self.openapi = openapi_document(
            [route.operation for route in ROUTES],
            title="SLA budget API",
            version=VERSION,
            read_auth=self.settings.api_read_auth == "token",
        )

    # -- serving ------------------------------------------------------------------

    def target(self) -> Callable[[Request], Awaitable[Response]]:
        """The plain coroutine functions-framework serves as ``handler``."""

        async def handler(request: Request) -> Response:
            return await self.handler(request)

        handler.__qualname__ = handler.__name__
        return handler

    async def handler(self, request: Request) -> Response:
        started = time.monotonic()
        log: dict[str, Any] = {"function": NAME, "method": request.method}
        route, response = await self._answer(request, log)
        template = route.operation.path if route else "unmatched"
        elapsed = time.monotonic() - started
        self._observe(request.method, template, response.status_code, elapsed)
        log.update(route=template, status=response.status_code)
        log["duration_ms"] = round(elapsed * 1000, 1)
        level = logging.ERROR if response.status_code >= 500 else logging.INFO
        if template.startswith("/healthz") and response.status_code < 500:
            level = logging.DEBUG
        logger.log(level, "request %s", template, extra={FIELDS: log})
        return response

    async def aclose(self, *, grace: float = 0.0) -> None:
        """Close the clients; the server has finished the requests in flight."""
        del grace
        await self.deps.aclose()

    async def store(self) -> Store:
        return await self.deps.store()

    async def cache(self) -> BudgetCache:
        return await self.deps.cache()

    def _observe(self, method: str, template: str, status: int, elapsed: float) -> None:
        label = method if method in METHODS else "other"
        metrics.API_REQUESTS.labels(
            route=template, method=label, code=str(status)
        ).inc()
        metrics.API_REQUEST_DURATION.labels(route=template).observe(elapsed)

    async def _answer(
        self, request: Request, log: dict[str, Any]
    ) -> tuple[Route | None, Response]:
        route: Route | None = None
        try:
            route, params = self._route(request)
            self._authorise(route.operation, request)
            call = Call(request, params, datetime.now(UTC), log)
            return route, await route.endpoint(self, call)
        except Exception as error:
            return route, self._failure(error, log)

    def _route(self, request: Request) -> tuple[Route, dict[str, str]]:
        path = request.url.path
        allowed: list[str] = []
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            if route.operation.method == request.method:
                return route, _object_names(match.groupdict())
            allowed.append(route.operation.method)
        if allowed:
            raise _NotAllowed(allowed)
        raise ApiProblem(404, f"no endpoint {path}; see /openapi.json")

    def _authorise(self, operation: Operation, request: Request) -> None:
        token = self.settings.api_token
        if operation.access == "write" and token is None:
            raise ApiProblem(
                503,
                "writes are not configured: set SLA_API_TOKEN or SLA_API_TOKEN_FILE",
            )
        needed = operation.access == "write" or (
            operation.access == "read" and self.settings.api_read_auth == "token"
        )
        if not needed or token is None:
            return
        if not token_matches(bearer_token(request), token.get_secret_value()):
            raise ApiProblem(401, "a valid bearer token is required")

    def _failure(self, error: Exception, log: dict[str, Any]) -> Response:
        if isinstance(error, _NotAllowed):
            response = error_response(405, str(error))
            response.headers["allow"] = ", ".join(error.allowed)
            return response
        if isinstance(error, ApiProblem):
            return error_response(error.status, str(error), error.field)
        if isinstance(error, InvalidInput):
            return error_response(error.status, str(error), error.field)
        if isinstance(error, NotFound):
            return error_response(404, str(error))
        if isinstance(error, StoreUnavailable | SinkUnavailable):
            log["error"] = f"{type(error).__name__}: {error}"
            response = error_response(503, f"{type(error).__name__}: {error}")
            response.headers["retry-after"] = "10"
            return response
        if isinstance(error, SLAError):
            log["error"] = f"{type(error).__name__}: {error}"
            return error_response(500, f"{type(error).__name__}: {error}")
        logger.error("unexpected failure", exc_info=error)
        return error_response(500, f"internal error ({type(error).__name__})")

    # -- events -------------------------------------------------------------------

    async def post_events(self, events: list[DecisionEvent]) -> bool:
        """Post the decision's events to K_SINK; False when no sink is set."""
        if not events or self.settings.k_sink is None:
            return False
        outgoing = [
            OutgoingEvent(
                type=event.type,
                source=function_source(NAME),
                id=event.id,
                data=JsonData(event.data),
                subject=event.subject,
            )
            for event in events
        ]
        types = [event.type for event in events]
        try:
            await self.deps.sink.post(outgoing)
        except SinkUnavailable:
            await self._count(metrics.published(types, outcome="error"))
            raise
        await self._count(metrics.published(types))
        return True

    async def _count(self, increments: list[Increment]) -> None:
        # Best effort: the override is committed and its answer stands either way.
        try:
            await (await self.store()).add_to_counters(increments)
        except SLAError:
            logger.warning("could not count %d published events", len(increments))


class _NotAllowed(Exception):
    def __init__(self, allowed: list[str]) -> None:
        self.allowed = allowed
        super().__init__(f"this path takes {', '.join(allowed)}")


# -- endpoints ------------------------------------------------------------------------


async def live(api: BudgetApi, call: Call) -> Response:
    return Response(status_code=204)


async def ready(api: BudgetApi, call: Call) -> Response:
    try:
        await (await api.store()).ping()
    except SLAError as error:
        return JSONResponse({"ready": False, "reason": str(error)}, status_code=503)
    return Response(status_code=204)


async def openapi(api: BudgetApi, call: Call) -> Response:
    return JSONResponse(api.openapi)


async def status_page(api: BudgetApi, call: Call) -> Response:
    store = await api.store()
    slos = await queries.slo_summaries(store, await api.cache())
    freezes = await queries.list_freezes(
        store, now=call.now, namespace=None, since=None
    )
    page = render_status_page(slos, freezes.active, generated_at=call.now)
    return HTMLResponse(page, headers={"cache-control": "no-store"})


async def metrics_page(api: BudgetApi, call: Call) -> Response:
    body = metrics.exposition()
    try:
        state = await read_state(await api.store(), await api.cache())
    except StoreUnavailable as error:
        # budget-api's own request metrics are still worth a scrape; the state's
        # and the stored work counters' absence shows as gaps, and the log says why.
        call.log["error"] = f"state metrics skipped: {error}"
    else:
        body += state_exposition(state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def list_slos(api: BudgetApi, call: Call) -> Response:
    query: SloQuery = parse_query(call.request, SloQuery)
    page = await queries.list_slos(await api.store(), await api.cache(), query)
    return _json_response(page)


async def get_slo(api: BudgetApi, call: Call) -> Response:
    parse_query(call.request, _NoQuery)
    detail = await queries.slo_detail(
        await api.store(),
        await api.cache(),
        call.params["namespace"],
        call.params["name"],
    )
    return _json_response(detail)


async def get_history(api: BudgetApi, call: Call) -> Response:
    query: HistoryQuery = parse_query(call.request, HistoryQuery)
    span = queries.HistoryRange.parse(query.start, query.end, query.step, now=call.now)
    history = await queries.slo_history(
        await api.store(), call.params["namespace"], call.params["name"], span
    )
    return _json_response(history)


async def get_freezes(api: BudgetApi, call: Call) -> Response:
    query: FreezeQuery = parse_query(call.request, FreezeQuery)
    freezes = await queries.list_freezes(
        await api.store(), now=call.now, namespace=query.namespace, since=query.since
    )
    return _json_response(freezes)


async def get_audit(api: BudgetApi, call: Call) -> Response:
    query: AuditQuery = parse_query(call.request, AuditQuery)
    return _json_response(await queries.read_audit(await api.store(), query))


async def _answer_override(
    api: BudgetApi, call: Call, outcome: OverrideOutcome
) -> Response:
    call.log.update(policy=outcome.result.policy, events=len(outcome.events))
    posted = await api.post_events(outcome.events)
    return _json_response(outcome.result.model_copy(update={"events_posted": posted}))


async def post_override(api: BudgetApi, call: Call) -> Response:
    request: OverrideRequest = await parse_body(call.request, OverrideRequest)
    call.log.update(actor=request.actor, action=request.action)
    outcome = await queries.put_override(
        await api.store(),
        call.params["namespace"],
        call.params["policy"],
        request,
        now=call.now,
    )
    return await _answer_override(api, call, outcome)


async def delete_override(api: BudgetApi, call: Call) -> Response:
    request: OverrideClearRequest = await parse_body(call.request, OverrideClearRequest)
    call.log.update(actor=request.actor, action="clear")
    outcome = await queries.remove_override(
        await api.store(),
        call.params["namespace"],
        call.params["policy"],
        request,
        now=call.now,
    )
    return await _answer_override(api, call, outcome)


class _NoQuery(BaseModel):
    model_config = {"extra": "forbid"}


TEXT: Final = "text/plain"
HTML: Final = "text/html"
JSON: Final = "application/json"
OVERRIDE_PATH: Final = "/freezes/{namespace}/{policy}/override"

_READ_ERRORS: Final = (400, 503)
_ONE_ERRORS: Final = (400, 404, 503)
_WRITE_ERRORS: Final = (400, 404, 409, 413, 415, 422, 503)

ROUTES: Final = (
    Route.of(
        Operation(
            "GET", LIVE_PATH, "The process runs", "open", TEXT, errors=(), success=204
        ),
        live,
    ),
    Route.of(
        Operation(
            "GET",
            READY_PATH,
            "The store answers",
            "open",
            TEXT,
            errors=(503,),
            success=204,
        ),
        ready,
    ),
    Route.of(
        Operation("GET", "/openapi.json", "This document", "open", JSON, errors=()),
        openapi,
    ),
    Route.of(
        Operation("GET", "/", "The status page", "read", HTML, errors=(503,)),
        status_page,
    ),
    Route.of(
        Operation("GET", "/metrics", "Prometheus metrics", "read", TEXT, errors=()),
        metrics_page,
    ),
    Route.of(
        Operation(
            "GET",
            "/slos",
            "SLOs, least budget first",
            "read",
            SloPage,
            query=SloQuery,
            errors=_READ_ERRORS,
        ),
        list_slos,
    ),
    Route.of(
        Operation(
            "GET",
            "/slos/{namespace}/{name}",
            "One SLO and its latest budget",
            "read",
            SloDetail,
            errors=_ONE_ERRORS,
        ),
        get_slo,
    ),
    Route.of(
        Operation(
            "GET",
            "/slos/{namespace}/{name}/history",
            "Budget over time",
            "read",
            History,
            query=HistoryQuery,
            errors=_ONE_ERRORS,
        ),
        get_history,
    ),
    Route.of(
        Operation(
            "GET",
            "/freezes",
            "Freezes in force and lifted, overrides",
            "read",
            Freezes,
            query=FreezeQuery,
            errors=_READ_ERRORS,
        ),
        get_freezes,
    ),
    Route.of(
        Operation(
            "GET",
            "/audit",
            "The audit log, oldest first",
            "read",
            AuditPage,
            query=AuditQuery,
            errors=_READ_ERRORS,
        ),
        get_audit,
    ),
    Route.of(
        Operation(
            "POST",
            OVERRIDE_PATH,
            "Force or lift a freeze until a time",
            "write",
            OverrideResult,
            body=OverrideRequest,
            errors=_WRITE_ERRORS,
        ),
        post_override,
    ),
    Route.of(
        Operation(
            "DELETE",
            OVERRIDE_PATH,
            "Remove an override",
            "write",
            OverrideResult,
            body=OverrideClearRequest,
            errors=_WRITE_ERRORS,
        ),
        delete_override,
    ),
)
