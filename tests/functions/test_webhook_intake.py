"""webhook-intake through its ASGI app: real PostgreSQL and a recording sink.

Bodies come from two places: the corpus of notifications other projects captured
(``../shared/corpus/alertmanager-payload``) and notifications written here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sla.clients.store import Store
from sla.clients.store.store import pool_of
from sla.services.alert_intake import label_fingerprint
from tests.support.functions import (
    REPOSITORY,
    RecordingSink,
    client_for,
    function_env,
    load_function,
)
from tests.support.webhook import TOKEN, alert, as_request, notification

CORPUS = REPOSITORY.parent / "shared" / "corpus" / "alertmanager-payload"
PROM2TEAMS = CORPUS / "idealista__prom2teams"
ALERTGRAM = CORPUS / "slok__alertgram"
CLAIM_SOURCE = "webhook-intake dev.sla.alert.received"


@pytest.fixture
async def serve(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    sink: RecordingSink,
) -> AsyncIterator[Callable[..., Any]]:
    """Loads webhook-intake with the test's settings (plus any given); closes it."""
    modules: list[Any] = []

    def start(**settings: str) -> Any:
        settings.setdefault("SLA_WEBHOOK_TOKEN", TOKEN)
        settings.setdefault("K_SINK", sink.url)
        function_env(
            monkeypatch, database_url=database_url, schema=schema_name, **settings
        )
        module, app = load_function("webhook-intake")
        modules.append(module)
        return app

    yield start
    for module in modules:
        await module.function.aclose()


@pytest.fixture
def intake(serve: Callable[..., Any]) -> Any:
    return serve()


async def post(
    app: Any, body: Any, *, token: str | None = TOKEN, **headers: str
) -> Any:
    request_headers, content = as_request(body, token=token)
    request_headers.update(headers)
    async with client_for(app) as client:
        return await client.post("/", headers=request_headers, content=content)


async def post_bytes(app: Any, content: bytes, headers: dict[str, str]) -> Any:
    async with client_for(app) as client:
        return await client.post("/", headers=headers, content=content)


async def processed_ids(store: Store) -> list[str]:
    async with pool_of(store).acquire() as connection:
        rows = await connection.fetch(
            "SELECT id FROM processed_events WHERE source = $1 "
            "AND processed_at IS NOT NULL ORDER BY id",
            CLAIM_SOURCE,
        )
    return [row["id"] for row in rows]


def corpus(path: Path) -> Any:
    return json.loads(path.read_text())


def log_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "sla.webhook"]


# -- the corpus ---------------------------------------------------------------------

ACCEPTED = [
    pytest.param(PROM2TEAMS / "tests__data__json_files__all_ok.json", 1, id="all_ok"),
    pytest.param(
        PROM2TEAMS / "tests__data__json_files__all_ok_multiple.json",
        2,
        id="two-alerts-sharing-a-copied-fingerprint",
    ),
    pytest.param(
        PROM2TEAMS / "tests__data__json_files__all_ok_extra_labels.json",
        1,
        id="extra-labels",
    ),
    pytest.param(
        PROM2TEAMS / "tests__data__json_files__all_ok_extra_annotations.json",
        1,
        id="extra-annotations",
    ),
    pytest.param(
        PROM2TEAMS / "tests__data__json_files__with_common_items.json",
        1,
        id="full-v4-body",
    ),
    pytest.param(
        PROM2TEAMS / "tests__data__json_files__without_fingerprint.json",
        1,
        id="no-fingerprint",
    ),
    pytest.param(
        PROM2TEAMS / "tests__data__json_files__without_instance_field.json",
        1,
        id="no-instance-label",
    ),
    pytest.param(
        PROM2TEAMS / "tests__data__json_files__without_optional_field.json",
        1,
        id="no-fingerprint-no-description",
    ),
    pytest.param(ALERTGRAM / "testdata__alerts__base.json", 4, id="alertgram"),
]


@pytest.mark.parametrize(("path", "events"), ACCEPTED)
async def test_corpus_notification_becomes_one_event_per_alert(
    intake: Any, sink: RecordingSink, path: Path, events: int
) -> None:
    body = corpus(path)

    answer = await post(intake, body)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "alerts": len(body["alerts"]),
        "emitted": events,
        "duplicates": 0,
    }
    received = sink.events()
    assert len(received) == events
    assert len({event.id for event in received}) == events
    # Posted concurrently: the sink's order is not the body's.
    by_fingerprint = {event.data()["fingerprint"]: event for event in received}
    for sent in body["alerts"]:
        fingerprint = label_fingerprint(sent["labels"])
        event = by_fingerprint[fingerprint]
        assert event.data()["status"] == sent["status"]
        assert event.data()["labels"] == sent["labels"]
        assert event.id.startswith(f"alert/{fingerprint}/{sent['status']}/")


async def test_corpus_body_without_statuses_is_refused_naming_the_field(
    intake: Any, sink: RecordingSink, store: Store
) -> None:
    """prom2teams' without_mandatory_field: no group or alert status."""
    body = corpus(PROM2TEAMS / "tests__data__json_files__without_mandatory_field.json")

    answer = await post(intake, body)

    assert answer.status_code == 400
    assert answer.json()["field"] == "alerts.0.status"
    assert "alerts.0.status" in answer.json()["error"]
    assert sink.events() == []
    assert await processed_ids(store) == []


async def test_timestamps_with_nanoseconds_are_read_to_the_microsecond(
    intake: Any, sink: RecordingSink
) -> None:
    """all_ok_multiple writes 9 fractional digits in one alert and 5 in the other;
    Python keeps 6. The two are posted concurrently, in either order."""
    body = corpus(PROM2TEAMS / "tests__data__json_files__all_ok_multiple.json")

    await post(intake, body)

    times = sorted((e.data()["startsAt"], e.data()["endsAt"]) for e in sink.events())
    assert times == [
        ("2017-05-09T07:01:37.803000Z", "2017-05-09T07:08:37.818000Z"),
        ("2017-05-09T07:01:37.803000Z", "2017-05-09T07:08:37.818270Z"),
    ]


async def test_missing_end_and_go_zero_end_are_both_null(
    intake: Any, sink: RecordingSink
) -> None:
    """alertgram leaves endsAt out; Alertmanager writes Go's zero time."""
    await post(intake, corpus(ALERTGRAM / "testdata__alerts__base.json"))
    zero = alert(labels={"alertname": "Z"}, ends_at="0001-01-01T00:00:00Z")
    await post(intake, notification([zero]))

    assert [event.data()["endsAt"] for event in sink.events()] == [None] * 5


# -- the events ---------------------------------------------------------------------


async def test_event_is_a_binary_cloudevent_from_webhook_intake(
    intake: Any, sink: RecordingSink
) -> None:
    labels = {"alertname": "SLOBurn", "slo": "checkout", "namespace": "shop"}
    firing = alert(labels=labels, starts_at="2026-01-05T10:00:00.250+01:00")

    await post(intake, notification([firing]))

    (event,) = sink.events()
    fingerprint = label_fingerprint(labels)
    assert event.id == f"alert/{fingerprint}/firing/2026-01-05T09:00:00.250000Z"
    assert event.type == "dev.sla.alert.received"
    assert event.headers["ce-source"] == "/sla/webhook-intake"
    assert event.headers["ce-subject"] == "shop/checkout"
    assert event.headers["ce-time"] == "2026-01-05T09:00:00.250000Z"
    assert event.headers["content-type"] == "application/json"
    data = event.data()
    assert data["version"] == 1
    assert data["slo"] == "shop/checkout"
    assert data["annotations"] == {"summary": "errors above budget"}
    assert data["generatorURL"] == "http://prometheus.example:9090/graph?g0.expr=up"
    assert data["receivedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("labels", "slo"),
    [
        pytest.param(
            {"slo": "checkout", "namespace": "shop"}, "shop/checkout", id="slo"
        ),
        pytest.param({"slo": "shop/checkout"}, "shop/checkout", id="slo-with-ns"),
        pytest.param(
            {"sloth_slo": "requests-availability", "namespace": "shop"},
            "shop/requests-availability",
            id="sloth",
        ),
        pytest.param(
            {"slo_name": "latency", "namespace": "api"}, "api/latency", id="slo_name"
        ),
        pytest.param({"slo": "checkout"}, None, id="no-namespace"),
        pytest.param({"alertname": "DiskFull"}, None, id="none"),
    ],
)
async def test_event_names_the_slo_its_labels_name(
    intake: Any, sink: RecordingSink, labels: dict[str, str], slo: str | None
) -> None:
    await post(intake, notification([alert(labels={"alertname": "A", **labels})]))

    (event,) = sink.events()
    assert event.data()["slo"] == slo
    assert event.headers.get("ce-subject") == slo


async def test_resent_notification_emits_nothing_new(
    intake: Any, sink: RecordingSink, store: Store
) -> None:
    body = notification(
        [alert(labels={"alertname": "A"}), alert(labels={"alertname": "B"})]
    )

    first = await post(intake, body)
    second = await post(intake, body)

    assert first.json()["emitted"] == 2
    assert second.status_code == 200
    assert second.json() == {"alerts": 2, "emitted": 0, "duplicates": 2}
    assert len(sink.events()) == 2
    assert len(await processed_ids(store)) == 2


async def test_resolution_and_refiring_are_new_events(
    intake: Any, sink: RecordingSink
) -> None:
    labels = {"alertname": "A"}
    fingerprint = label_fingerprint(labels)
    firing = alert(labels=labels, starts_at="2026-01-05T10:00:00Z")
    resolved = alert(
        labels=labels,
        status="resolved",
        starts_at="2026-01-05T10:00:00Z",
        ends_at="2026-01-05T10:30:00Z",
    )
    again = alert(labels=labels, starts_at="2026-01-05T11:00:00Z")

    for body in (firing, firing, resolved, resolved, again):
        assert (await post(intake, notification([body]))).status_code == 200

    assert sink.ids() == [
        f"alert/{fingerprint}/firing/2026-01-05T10:00:00Z",
        f"alert/{fingerprint}/resolved/2026-01-05T10:00:00Z",
        f"alert/{fingerprint}/firing/2026-01-05T11:00:00Z",
    ]
    assert sink.events()[1].headers["ce-time"] == "2026-01-05T10:30:00Z"


async def test_one_alert_repeated_in_a_body_is_one_event(
    intake: Any, sink: RecordingSink
) -> None:
    body = notification([alert(), alert()])

    answer = await post(intake, body)

    assert answer.json() == {"alerts": 2, "emitted": 1, "duplicates": 0}
    assert len(sink.events()) == 1


async def test_notification_without_alerts_is_accepted_emitting_nothing(
    intake: Any, sink: RecordingSink
) -> None:
    answer = await post(intake, notification([]))

    assert answer.status_code == 200
    assert sink.events() == []


async def test_resend_after_the_retention_is_emitted_again(
    intake: Any, sink: RecordingSink, store: Store
) -> None:
    """Retention 35 days (SLA_SNAPSHOT_RETENTION_DAYS): a row processed 36 days
    ago no longer holds the id back, even before the retention job deletes it."""
    body = notification([alert()])
    await post(intake, body)
    async with pool_of(store).acquire() as connection:
        await connection.execute(
            "UPDATE processed_events SET processed_at = now() - interval '36 days'"
        )

    answer = await post(intake, body)

    assert answer.json()["emitted"] == 1
    assert len(sink.events()) == 2
    assert sink.ids()[0] == sink.ids()[1]


# -- failures downstream ------------------------------------------------------------


async def test_sink_down_answers_503_and_the_retry_delivers_every_event_once(
    intake: Any, sink: RecordingSink, store: Store
) -> None:
    body = notification([alert(labels={"alertname": n}) for n in ("A", "B", "C")])
    sink.status = 503

    refused = await post(intake, body)

    assert refused.status_code == 503
    assert "sink" in refused.json()["error"]
    assert await processed_ids(store) == []

    sink.status = 202
    accepted = await post(intake, body)
    again = await post(intake, body)

    assert accepted.status_code == 200
    assert accepted.json()["emitted"] == 3
    assert again.json()["duplicates"] == 3
    assert sorted(sink.ids()) == sorted(set(sink.ids()))
    assert len(sink.ids()) == 3


async def test_sink_unreachable_answers_503(intake: Any, sink: RecordingSink) -> None:
    sink.stop()

    answer = await post(intake, notification([alert()]))

    assert answer.status_code == 503


async def test_alert_held_by_another_request_answers_503_after_passing_on_the_rest(
    intake: Any, sink: RecordingSink, store: Store
) -> None:
    held = alert(labels={"alertname": "Held"})
    free = alert(labels={"alertname": "Free"})
    held_id = f"alert/{label_fingerprint(held['labels'])}/firing/2026-01-05T10:00:00Z"
    async with pool_of(store).acquire() as connection:
        await connection.execute(
            "INSERT INTO processed_events (source, id, claimed_until)"
            " VALUES ($1, $2, now() + interval '1 minute')",
            CLAIM_SOURCE,
            held_id,
        )

    answer = await post(intake, notification([held, free]))

    assert answer.status_code == 503
    assert "another request" in answer.json()["error"]
    assert [event.data()["labels"]["alertname"] for event in sink.events()] == ["Free"]


# -- authentication -----------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer wrong-token", id="wrong-token"),
        pytest.param(f"Basic {TOKEN}", id="token-as-basic"),
        pytest.param(f"Token {TOKEN}", id="other-scheme"),
        pytest.param("Bearer", id="empty-bearer"),
    ],
)
async def test_wrong_credentials_get_401_and_nothing_happens(
    intake: Any, sink: RecordingSink, store: Store, authorization: str | None
) -> None:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization

    answer = await post_bytes(
        intake, json.dumps(notification([alert()])).encode(), headers
    )

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="webhook-intake"'
    assert sink.events() == []
    assert await processed_ids(store) == []


async def test_bearer_scheme_is_case_insensitive(intake: Any) -> None:
    answer = await post(
        intake, notification([]), token=None, authorization=f"bearer {TOKEN}"
    )

    assert answer.status_code == 200


async def test_token_from_a_file_with_a_trailing_newline(
    serve: Callable[..., Any], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    app = serve(SLA_WEBHOOK_TOKEN_FILE=str(token_file), SLA_WEBHOOK_TOKEN="")

    assert (await post(app, notification([]))).status_code == 200


async def test_basic_auth_users_from_a_file(
    serve: Callable[..., Any], tmp_path: Path
) -> None:
    users = tmp_path / "users"
    users.write_text("# Alertmanager's receivers\nam-prod:pa:ss:word\n\nam-dev:other\n")
    app = serve(SLA_WEBHOOK_BASIC_AUTH_FILE=str(users), SLA_WEBHOOK_TOKEN="")

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    ok = await post(
        app, notification([]), token=None, authorization=basic("am-prod", "pa:ss:word")
    )
    wrong = await post(
        app, notification([]), token=None, authorization=basic("am-dev", "pa:ss:word")
    )
    bearer = await post(app, notification([]))

    assert ok.status_code == 200
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Basic realm="webhook-intake"'
    assert bearer.status_code == 401


async def test_open_webhook_takes_requests_without_credentials(
    serve: Callable[..., Any],
) -> None:
    app = serve(SLA_WEBHOOK_AUTH="none", SLA_WEBHOOK_TOKEN="")

    assert (await post(app, notification([]), token=None)).status_code == 200


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"SLA_WEBHOOK_TOKEN": ""}, id="no-credentials"),
        pytest.param({"SLA_WEBHOOK_AUTH": "none"}, id="none-with-a-token"),
    ],
)
def test_start_is_refused_without_credentials_or_with_contradicting_ones(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    settings: dict[str, str],
) -> None:
    function_env(
        monkeypatch,
        database_url=database_url,
        schema="unused",
        **{"SLA_WEBHOOK_TOKEN": TOKEN, **settings},
    )

    with pytest.raises(SystemExit) as exit_info:
        load_function("webhook-intake")

    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "SLA_WEBHOOK" in error
    assert TOKEN not in error


# -- input limits and validation ----------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text"),
        pytest.param("application/x-www-form-urlencoded", id="form"),
        pytest.param(None, id="none"),
    ],
)
async def test_only_json_is_accepted(intake: Any, content_type: str | None) -> None:
    headers = {"authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["content-type"] = content_type

    answer = await post_bytes(intake, b"{}", headers)

    assert answer.status_code == 415


async def test_json_with_a_charset_is_accepted(intake: Any) -> None:
    answer = await post(
        intake, notification([]), **{"content-type": "application/json; charset=utf-8"}
    )

    assert answer.status_code == 200


async def test_body_over_the_limit_is_413_and_logged_as_an_error(
    serve: Callable[..., Any], sink: RecordingSink, capsys: pytest.CaptureFixture[str]
) -> None:
    app = serve(SLA_WEBHOOK_MAX_BODY_BYTES="1000")
    body = notification([alert(labels={"alertname": f"A{n}"}) for n in range(5)])
    assert len(json.dumps(body)) > 1000

    answer = await post(app, body)

    assert answer.status_code == 413
    assert "SLA_WEBHOOK_MAX_BODY_BYTES=1000" in answer.json()["error"]
    (line,) = log_lines(capsys.readouterr().out)
    assert line["level"] == "ERROR"
    assert line["status"] == 413
    assert sink.events() == []


async def test_more_alerts_than_the_cap_is_413_naming_the_field(
    serve: Callable[..., Any], sink: RecordingSink, capsys: pytest.CaptureFixture[str]
) -> None:
    app = serve(SLA_WEBHOOK_MAX_ALERTS="2")
    body = notification([alert(labels={"alertname": f"A{n}"}) for n in range(3)])

    answer = await post(app, body)

    assert answer.status_code == 413
    assert answer.json()["field"] == "alerts"
    assert "max_alerts" in answer.json()["error"]
    (line,) = log_lines(capsys.readouterr().out)
    assert line["level"] == "ERROR"
    assert sink.events() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"version": "3"}, "version", id="old-version"),
        pytest.param({"version": 4}, "version", id="version-number"),
        pytest.param({"alerts": None}, "alerts", id="alerts-null"),
        pytest.param({"alerts": {}}, "alerts", id="alerts-object"),
        pytest.param({"truncatedAlerts": -1}, "truncatedAlerts", id="negative"),
        pytest.param({"truncatedAlerts": "3"}, "truncatedAlerts", id="text-count"),
        pytest.param({"commonLabels": {"a": 1}}, "commonLabels.a", id="number-label"),
    ],
)
async def test_wrong_group_field_is_400_naming_it(
    intake: Any, change: dict[str, Any], field: str
) -> None:
    body = notification([alert()], **change)

    answer = await post(intake, body)

    assert answer.status_code == 400
    assert answer.json()["field"] == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"status": "pending"}, "alerts.0.status", id="status"),
        pytest.param({"labels": {}}, "alerts.0.labels", id="no-labels"),
        pytest.param({"labels": {"job": 7}}, "alerts.0.labels.job", id="label-number"),
        pytest.param({"startsAt": "yesterday"}, "alerts.0.startsAt", id="start-text"),
        pytest.param({"startsAt": 1767607200}, "alerts.0.startsAt", id="start-unix"),
        pytest.param(
            {"startsAt": "2026-01-05T10:00:00"}, "alerts.0.startsAt", id="no-zone"
        ),
        pytest.param({"endsAt": "soon"}, "alerts.0.endsAt", id="end"),
        pytest.param({"fingerprint": 42}, "alerts.0.fingerprint", id="fp-number"),
        pytest.param({"annotations": []}, "alerts.0.annotations", id="annotations"),
    ],
)
async def test_wrong_alert_field_is_400_naming_it(
    intake: Any, sink: RecordingSink, change: dict[str, Any], field: str
) -> None:
    body = notification([alert(**change)])

    answer = await post(intake, body)

    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert sink.events() == []


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
    ],
)
async def test_not_a_json_object_is_400(intake: Any, content: bytes) -> None:
    headers, _ = as_request({})

    answer = await post_bytes(intake, content, headers)

    assert answer.status_code == 400
    assert answer.json()["error"]


async def test_get_is_405(intake: Any) -> None:
    async with client_for(intake) as client:
        answer = await client.get("/", headers={"authorization": f"Bearer {TOKEN}"})

    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


# -- logs and health ----------------------------------------------------------------


async def test_one_log_line_per_request_without_secrets_or_payload(
    intake: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = {"alertname": "A", "slo": "checkout", "namespace": "shop"}
    body = notification([alert(labels=labels)], truncatedAlerts=7)

    await post(intake, body)
    await post(intake, body, token="a-wrong-secret")

    output = capsys.readouterr().out
    accepted, refused = log_lines(output)
    assert accepted["level"] == "WARNING"
    assert accepted["outcome"] == "accepted"
    assert accepted["truncated_alerts"] == 7
    assert accepted["truncated_alerts_total"] == 7
    assert accepted["slos"] == ["shop/checkout"]
    assert (accepted["alerts"], accepted["emitted"]) == (1, 1)
    assert refused["status"] == 401
    for secret in (TOKEN, "a-wrong-secret", "errors above budget", "generatorURL"):
        assert secret not in output


async def test_health_endpoints(intake: Any, serve: Callable[..., Any]) -> None:
    async with client_for(intake) as client:
        live = await client.get("/healthz/live")
        ready = await client.get("/healthz/ready")
    without_sink = serve(K_SINK="")
    async with client_for(without_sink) as client:
        not_ready = await client.get("/healthz/ready")

    assert live.status_code == 204
    assert ready.status_code == 204
    assert not_ready.status_code == 503
    assert "K_SINK" in not_ready.json()["reason"]
