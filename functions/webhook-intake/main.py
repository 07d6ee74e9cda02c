"""webhook-intake: Alertmanager's webhook in, one ``dev.sla.alert.received`` per alert.

Alertmanager posts plain JSON (payload version 4), authenticated with a bearer
token or basic auth (``SLA_WEBHOOK_TOKEN``/``_FILE``, ``SLA_WEBHOOK_BASIC_AUTH_FILE``;
``SLA_WEBHOOK_AUTH=none`` for an open webhook). Each alert becomes an event with an
id made of its fingerprint, status and start, posted to ``K_SINK``; an alert passed
on before (within ``SLA_SNAPSHOT_RETENTION_DAYS``) is not posted again. The answer
is 2xx only once every event was accepted, 5xx when they could not be handed on (so
Alertmanager retries), 4xx for a body that is wrong.

The request handling is :mod:`sla.runtime.webhook`, the alert logic
:mod:`sla.services.alert_intake`; docs/webhook-intake.md is the operator's guide.
"""

from __future__ import annotations

from sla.runtime.webhook import WebhookIntake

function = WebhookIntake("webhook-intake")
handler = function.target()
