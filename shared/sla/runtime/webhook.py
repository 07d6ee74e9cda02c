"""webhook-intake's HTTP side: Alertmanager's webhook in, CloudEvents out.

Alertmanager posts plain JSON, not a CloudEvent, so this is served beside the
CloudEvent adapter (:mod:`sla.runtime.function`) rather than through it, with the
same shape for functions-framework (``handler = intake.target()``), the same health
paths and the same one JSON log line per request.

A request goes through, in order, each step answering on its own when it fails:

    401  no credentials or wrong ones (nothing is read past the headers)
    405  a method other than POST
    415  a content type other than application/json
    413  a body over SLA_WEBHOOK_MAX_BODY_BYTES, or more alerts than
         SLA_WEBHOOK_MAX_ALERTS; logged at ERROR, since Alertmanager drops a
         notification it gets a 4xx for, and only an operator can fix the limits
    400  not JSON, or a body that is not a version-4 notification (names the field)
    503  the store or the sink cannot take the alerts now, or another request is
         passing on some of the same alerts; Alertmanager retries only 5xx
    500  anything unexpected (logged with its traceback); retried as well
    200  every alert's event was accepted by K_SINK, or had been before

Bodies are JSON, since Alertmanager is the only client and only logs them:
``{"error": reason, "field": name or null}`` for a refusal, ``{"alerts": n,
"emitted": k, "duplicates": d}`` for a success.

Limits beside Alertmanager's own: a receiver's ``max_alerts`` (0, unlimited, by
default) truncates a notification before sending and reports how many were left
out in ``truncatedAlerts``, which is logged and counted here. Keep ``max_alerts``
at or below SLA_WEBHOOK_MAX_ALERTS (5000), or Alertmanager's notification is
refused with 413 and never retried. At a few hundred bytes per alert, 5000 alerts
stay well inside the 10 MiB body limit.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sla.clients.alert_claims import AlertClaims
from sla.errors import SLAError, StoreUnavailable
from sla.model.alertmanager import WebhookPayload
from sla.model.base import error_message
from sla.model.events import ALERT_RECEIVED, function_source
from sla.runtime.binding import EventRejected, OutgoingEvent, media_type
from sla.runtime.dependencies import Dependencies
from sla.runtime.function import settings_or_exit as _settings_or_exit
from sla.runtime.logs import FIELDS, configure_logging
from sla.runtime.serving import SHUTDOWN_SECONDS, Served, not_ready, read_body
from sla.runtime.settings import Settings, SettingsError
from sla.runtime.sink import SinkUnavailable
from sla.runtime.webhook_auth import Credentials, load_credentials
from sla.services.alert_intake import (
    IntakeResult,
    ReceivedAlert,
    pass_on,
    received_alerts,
)

NAME: Final = "webhook-intake"
JSON_MEDIA_TYPE: Final = "application/json"

LEASE_SECONDS: Final = 60.0
"""How long a claim on an alert holds: longer than posting its events can take
(the sink gives up retrying after 20 s, each post after 10 s) and the Knative
Service's 30 s request timeout, so a concurrent resend waits instead of posting
the same events at the same time."""

LOGGED_SLOS: Final = 20
"""SLO keys written into one log line; the rest are counted, not listed."""

LOGGED_GROUP_KEY_CHARS: Final = 200
"""A group key is the route's matchers plus the group's label values: enough to
find the group, not a payload."""

_TRANSIENT: Final = (StoreUnavailable, SinkUnavailable)

logger = logging.getLogger("sla.webhook")


class WebhookIntake(Served):
    """The function: credentials, limits, and the clients it passes alerts on with."""

    def __init__(
        self,
        name: str = NAME,
        *,
        settings: Settings | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.name = name
        self.settings = settings if settings is not None else _settings_or_exit(name)
        configure_logging(self.settings.log_level)
        self.credentials = credentials_or_exit(name, self.settings)
        super().__init__(Dependencies(self.settings))
        self.lease_seconds = lease_seconds
        self.truncated_alerts_total = 0
        """Alerts Alertmanager left out of notifications (``truncatedAlerts``)
        since the process started."""
        self._claims: AlertClaims | None = None

    # -- serving ------------------------------------------------------------------

    async def aclose(self, *, grace: float = SHUTDOWN_SECONDS) -> None:
        await super().aclose(grace=grace)
        self._claims = None

    async def _readiness(self) -> Response:
        if self.settings.k_sink is None:
            return not_ready("K_SINK is not set: alerts could not be passed on")
        return await super()._readiness()

    # -- one request --------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        started = time.monotonic()
        line: dict[str, Any] = {"function": self.name}
        try:
            result = await self._intake(request, line)
            answer, label = _success(result, line), "accepted"
        except Exception as error:
            answer, label = self._failure(error, line)
        line.update(
            outcome=label,
            status=answer.status_code,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        level = _level(answer.status_code)
        if line.get("truncated_alerts"):
            level = max(level, logging.WARNING)
        logger.log(level, "webhook %s", label, extra={FIELDS: line})
        return answer

    async def _intake(self, request: Request, line: dict[str, Any]) -> IntakeResult:
        if not self.credentials.allows(request.headers.get("authorization")):
            raise EventRejected(401, "missing or wrong credentials")
        if request.method != "POST":
            raise EventRejected(405, f"{request.method} is not accepted; POST")
        _require_json(request.headers.get("content-type", ""))
        body = await read_body(
            request,
            max_bytes=self.settings.webhook_max_body_bytes,
            too_large=_too_large,
        )
        payload = parse_payload(body, max_alerts=self.settings.webhook_max_alerts)
        _describe(payload, line)
        if payload.truncated_alerts:
            self.truncated_alerts_total += payload.truncated_alerts
            line["truncated_alerts_total"] = self.truncated_alerts_total
        notification = received_alerts(payload, received_at=datetime.now(UTC))
        if notification.replaced_fingerprints:
            line["replaced_fingerprints"] = notification.replaced_fingerprints
        result = await pass_on(
            notification.alerts,
            claims=await self._alert_claims(),
            post=self._post,
            lease_seconds=self.lease_seconds,
        )
        line.update(emitted=len(result.emitted), duplicates=result.duplicates)
        if result.busy:
            line["busy"] = result.busy
            raise EventRejected(
                503,
                f"{result.busy} alert(s) are being passed on by another request; retry",
            )
        return result

    async def _alert_claims(self) -> AlertClaims:
        if self._claims is None:
            self._claims = AlertClaims(
                await self.deps.store(),
                source=f"{self.name} {ALERT_RECEIVED}",
                retention_days=self.settings.snapshot_retention_days,
            )
        return self._claims

    async def _post(self, alerts: Sequence[ReceivedAlert]) -> None:
        await self.deps.sink.post([self._event(alert) for alert in alerts])

    def _event(self, alert: ReceivedAlert) -> OutgoingEvent:
        return OutgoingEvent(
            type=ALERT_RECEIVED,
            source=function_source(self.name),
            id=alert.id,
            data=alert.data,
            subject=alert.data.slo,
            time=alert.occurred_at,
        )

    def _failure(self, error: Exception, line: dict[str, Any]) -> tuple[Response, str]:
        rejected = _as_rejection(error)
        line["reason"] = rejected.reason
        if rejected.field:
            line["field"] = rejected.field
        if rejected.status >= 500 and not isinstance(error, _TRANSIENT):
            logger.error("webhook failed", exc_info=error, extra={FIELDS: dict(line)})
        body = {"error": rejected.reason, "field": rejected.field}
        response = JSONResponse(body, status_code=rejected.status)
        if rejected.status == 401:
            response.headers["www-authenticate"] = self.credentials.challenge
        if rejected.status == 405:
            response.headers["allow"] = "POST"
        label = "failed" if rejected.status >= 500 else "rejected"
        return response, label


def parse_payload(body: bytes, *, max_alerts: int) -> WebhookPayload:
    """The notification in ``body``; EventRejected (400 or 413) says why not."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        # Not the decoder's message: it can quote the body.
        raise EventRejected(400, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise EventRejected(400, "the body must be a JSON object")
    alerts = document.get("alerts")
    if isinstance(alerts, list) and len(alerts) > max_alerts:
        raise EventRejected(
            413,
            f"{len(alerts)} alerts in one notification, more than "
            f"SLA_WEBHOOK_MAX_ALERTS={max_alerts}; set the receiver's max_alerts "
            "at or below it",
            field="alerts",
        )
    try:
        return WebhookPayload.model_validate(document)
    except ValidationError as error:
        raise _validation_rejection(error) from None
    except RecursionError:
        raise EventRejected(400, "the body is nested too deeply") from None


def credentials_or_exit(name: str, settings: Settings) -> Credentials:
    """The webhook's credentials, or the process stops with the reason."""
    try:
        return load_credentials(settings)
    except SettingsError as error:
        print(f"{name}: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _require_json(content_type: str) -> None:
    declared = media_type(content_type)
    if declared != JSON_MEDIA_TYPE:
        shown = declared or "no content type"
        raise EventRejected(415, f"{shown} is not accepted; send {JSON_MEDIA_TYPE}")


def _too_large(max_bytes: int) -> EventRejected:
    return EventRejected(
        413,
        f"the body is larger than SLA_WEBHOOK_MAX_BODY_BYTES={max_bytes}; lower the "
        "receiver's max_alerts",
    )


def _validation_rejection(error: ValidationError) -> EventRejected:
    first = error.errors(include_input=False, include_url=False)[0]
    # A location can hold a label name from the body: made printable, so that a
    # lone surrogate cannot break the JSON answer.
    field = _printable(".".join(str(part) for part in first["loc"])) or None
    count = error.error_count()
    more = f" (and {count - 1} more problem(s))" if count > 1 else ""
    where = field or "the body"
    return EventRejected(400, f"{where}: {error_message(first)}{more}", field=field)


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _describe(payload: WebhookPayload, line: dict[str, Any]) -> None:
    firing = sum(1 for alert in payload.alerts if alert.status == "firing")
    line.update(
        receiver=payload.receiver,
        group_key=payload.group_key[:LOGGED_GROUP_KEY_CHARS],
        alerts=len(payload.alerts),
        firing=firing,
        resolved=len(payload.alerts) - firing,
    )
    if payload.truncated_alerts:
        line["truncated_alerts"] = payload.truncated_alerts


def _success(result: IntakeResult, line: dict[str, Any]) -> Response:
    slos = sorted({alert.data.slo for alert in result.emitted if alert.data.slo})
    if slos:
        line["slos"] = slos[:LOGGED_SLOS]
        line["slo_count"] = len(slos)
    body = {
        "alerts": line.get("alerts", 0),
        "emitted": len(result.emitted),
        "duplicates": result.duplicates,
    }
    return JSONResponse(body, status_code=200)


def _as_rejection(error: Exception) -> EventRejected:
    if isinstance(error, EventRejected):
        return error
    if isinstance(error, _TRANSIENT):
        return EventRejected(503, f"{type(error).__name__}: {error}")
    if isinstance(error, SLAError):
        return EventRejected(500, f"{type(error).__name__}: {error}")
    return EventRejected(500, f"internal error ({type(error).__name__})")


def _level(status: int) -> int:
    # 413 is loud: Alertmanager drops the notification, and only the limits or
    # the receiver's max_alerts can fix it. A truncated notification is a warning.
    if status >= 500 or status == 413:
        return logging.ERROR
    if status in (401, 403):
        return logging.WARNING
    return logging.INFO
