"""budget-api against real PostgreSQL and Redis, served as functions-framework
serves it: reads, filters, history, freezes, overrides, audit, auth and errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sla.clients.store import Store
from tests.support.budget_api import (
    AUTH,
    EVALUATED,
    TOKEN,
    open_api,
    policy_object,
    seed_objects,
    slo_object,
    snapshot,
)
from tests.support.functions import RecordingSink
from tests.support.servers import RedisServer


@pytest.fixture
async def api(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    redis_server: RedisServer,
    sink: RecordingSink,
) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(
        monkeypatch,
        database_url=database_url,
        schema=schema_name,
        SLA_REDIS_URL=redis_server.url,
        SLA_API_TOKEN=TOKEN,
        K_SINK=sink.url,
    ) as (client, _):
        yield client


async def seed_three(store: Store) -> None:
    """payments/checkout 0.25 left, payments/search 0.9, shop/cart no snapshot."""
    await seed_objects(
        store,
        slo_object("payments", "checkout", labels={"team": "pay", "tier": "1"}),
        slo_object("payments", "search", service="search", labels={"team": "pay"}),
        slo_object("shop", "cart", service="cart", labels={"team": "shop"}),
    )
    await store.put_snapshots(
        [
            snapshot("payments/checkout", 0.25, status="warning"),
            snapshot("payments/search", 0.9),
        ]
    )


def keys(page: dict[str, Any]) -> list[str]:
    return [item["slo"] for item in page["items"]]


async def test_slos_are_listed_least_budget_first_and_no_data_last(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed_three(store)

    response = await api.get("/slos")

    assert response.status_code == 200
    page = response.json()
    assert keys(page) == ["payments/checkout", "payments/search", "shop/cart"]
    assert page["items"][0]["remaining"] == 0.25
    assert page["items"][2]["status"] == "no_data"
    assert page["total"] == 3 and page["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("namespace=shop", ["shop/cart"]),
        ("service=search", ["payments/search"]),
        ("label=team=pay", ["payments/checkout", "payments/search"]),
        ("label=team=pay&label=tier=1", ["payments/checkout"]),
        ("status=warning", ["payments/checkout"]),
        ("status=no_data", ["shop/cart"]),
    ],
    ids=["namespace", "service", "label", "two-labels", "status", "no-data"],
)
async def test_slos_filter(
    api: httpx.AsyncClient, store: Store, query: str, expected: list[str]
) -> None:
    await seed_three(store)

    response = await api.get(f"/slos?{query}")

    assert keys(response.json()) == expected


async def test_slo_pages_follow_the_cursor(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed_three(store)

    first = (await api.get("/slos?limit=2")).json()
    second = (await api.get(f"/slos?limit=2&cursor={first['next_cursor']}")).json()

    assert keys(first) == ["payments/checkout", "payments/search"]
    assert keys(second) == ["shop/cart"] and second["next_cursor"] is None


async def test_a_cursor_not_given_out_is_400(api: httpx.AsyncClient) -> None:
    response = await api.get("/slos?cursor=garbage")

    assert response.status_code == 400
    assert response.json()["field"] == "cursor"


async def test_an_unknown_or_repeated_parameter_is_400_naming_it(
    api: httpx.AsyncClient,
) -> None:
    unknown = await api.get("/slos?colour=red")
    repeated = await api.get("/slos?namespace=a&namespace=b")
    wrong = await api.get("/slos?limit=0")

    assert (unknown.status_code, unknown.json()["field"]) == (400, "colour")
    assert (repeated.status_code, repeated.json()["field"]) == (400, "namespace")
    assert (wrong.status_code, wrong.json()["field"]) == (400, "limit")


async def test_an_slo_shows_its_definition_and_latest_budget(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed_three(store)
    later = snapshot("payments/checkout", 0.2, at=EVALUATED + timedelta(minutes=1))
    await store.put_snapshots([later])

    response = await api.get("/slos/payments/checkout")

    body = response.json()
    assert response.status_code == 200
    assert body["definition"]["service"] == "checkout"
    assert body["budget"]["error_budget"]["remaining"] == 0.2
    assert body["budget"]["evaluated_at"] == "2025-03-01T12:01:00Z"


async def test_an_unknown_slo_is_404_as_json(api: httpx.AsyncClient) -> None:
    response = await api.get("/slos/payments/nothing")

    assert response.status_code == 404
    assert response.json() == {
        "error": "no SLODefinition payments/nothing",
        "field": None,
    }


async def test_history_takes_the_last_snapshot_of_each_step(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed_three(store)
    minutes = [1, 2, 3, 4, 5, 6, 7]  # after 12:00; remaining 0.9 − 0.01 × minute
    await store.put_snapshots(
        snapshot("payments/search", 0.9 - m / 100, at=EVALUATED + timedelta(minutes=m))
        for m in minutes
    )
    start = int(EVALUATED.timestamp())

    response = await api.get(
        "/slos/payments/search/history",
        params={"from": str(start), "to": "2025-03-01T12:10:00Z", "step": "5m"},
    )

    body = response.json()
    # Steps [12:00, 12:05) and [12:05, 12:10): their last snapshots are 12:04, 12:07.
    times = [point["evaluated_at"] for point in body["points"]]
    assert times == ["2025-03-01T12:04:00Z", "2025-03-01T12:07:00Z"]
    assert body["points"][0]["remaining"] == pytest.approx(0.86)
    assert body["step"] == "5m" and body["from"] == "2025-03-01T12:00:00Z"


async def test_history_without_a_step_is_every_snapshot(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed_three(store)

    response = await api.get(
        "/slos/payments/search/history",
        params={"from": "2025-03-01T11:00:00Z", "to": "2025-03-01T13:00:00+00:00"},
    )

    assert [p["remaining"] for p in response.json()["points"]] == [0.9]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-03-02T00:00:00Z", "to": "2025-03-01T00:00:00Z"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2025-03-01T00:00:00"}, "from"),
        ({"step": "fast"}, "step"),
        ({"from": "0", "to": "2025-03-01T00:00:00Z", "step": "1s"}, "step"),
    ],
    ids=["reversed", "not-a-time", "no-zone", "not-a-step", "too-many-steps"],
)
async def test_history_refuses_a_wrong_range(
    api: httpx.AsyncClient, store: Store, params: dict[str, str], field: str
) -> None:
    await seed_three(store)

    response = await api.get("/slos/payments/search/history", params=params)

    assert response.status_code == 400
    assert response.json()["field"] == field


async def seed_policy(store: Store) -> None:
    await seed_three(store)
    await seed_objects(store, policy_object("payments", "release-gate", ["checkout"]))


OVERRIDE = "/freezes/payments/release-gate/override"


def override(action: str = "force", **fields: Any) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(hours=2)
    body = {
        "action": action,
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reason": "INC-42: database migration",
        "actor": "alice",
    }
    body.update(fields)
    return body


async def test_a_forced_freeze_is_audited_posted_and_shown(
    api: httpx.AsyncClient, store: Store, sink: RecordingSink
) -> None:
    await seed_policy(store)

    response = await api.post(
        "/freezes/payments/release-gate/override", json=override(), headers=AUTH
    )

    body = response.json()
    assert response.status_code == 200, body
    assert body["state"] == "frozen" and body["events_posted"] is True
    assert [e["type"] for e in body["events"]] == ["dev.sla.freeze.requested"]
    posted = sink.events()
    assert [e.type for e in posted] == ["dev.sla.freeze.requested"]
    assert posted[0].headers["ce-source"] == "/sla/budget-api"
    assert posted[0].data()["policy"] == "payments/release-gate"

    freezes = (await api.get("/freezes")).json()
    assert [f["policy"] for f in freezes["active"]] == ["payments/release-gate"]
    assert "INC-42" in freezes["active"][0]["reason"]
    assert freezes["overrides"][0]["actor"] == "alice"

    audit = (await api.get("/audit?kind=override&subject=payments/release-gate")).json()
    assert [(e["actor"], e["outcome"]) for e in audit["entries"]] == [
        ("alice", "set-force")
    ]


async def test_lifting_a_forced_freeze_posts_freeze_lifted(
    api: httpx.AsyncClient, store: Store, sink: RecordingSink
) -> None:
    await seed_policy(store)
    path = "/freezes/payments/release-gate/override"
    await api.post(path, json=override(), headers=AUTH)

    lifted = await api.post(path, json=override("lift"), headers=AUTH)
    cleared = await api.request(
        "DELETE", path, json={"reason": "done", "actor": "bob"}, headers=AUTH
    )

    assert lifted.json()["state"] == "lifted"
    assert [e.type for e in sink.events()] == [
        "dev.sla.freeze.requested",
        "dev.sla.freeze.lifted",
    ]
    assert cleared.status_code == 200 and cleared.json()["override"] is None
    recent = (await api.get("/freezes")).json()["recent"]
    assert [f["policy"] for f in recent] == ["payments/release-gate"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "force"}, "expires_at"),
        (override(reason="  "), "reason"),
        (override(actor=""), "actor"),
        (override(action="pause"), "action"),
        (override(expires_at="2020-01-01T00:00:00Z"), "expires_at"),
        (override(expires_at="2030-01-01T00:00:00"), "expires_at"),
        (override(extra="x"), "extra"),
    ],
    ids=["missing", "blank-reason", "no-actor", "action", "past", "naive", "extra"],
)
async def test_an_override_needs_every_field_right(
    api: httpx.AsyncClient, store: Store, body: dict[str, Any], field: str
) -> None:
    await seed_policy(store)

    response = await api.post(
        "/freezes/payments/release-gate/override", json=body, headers=AUTH
    )

    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_an_override_body_that_is_not_json_is_400(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post(
        "/freezes/payments/release-gate/override", content=b"{", headers=AUTH
    )

    assert response.status_code == 400


def expiring_in(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_an_override_error_reads_as_the_validator_wrote_it(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed_policy(store)
    body = override(expires_at="2030-01-01T00:00:00")

    response = await api.post(OVERRIDE, json=body, headers=AUTH)

    assert response.status_code == 422
    assert response.json() == {
        "error": "2030-01-01T00:00:00 has no time zone; write it with Z or an offset",
        "field": "expires_at",
    }


async def test_an_override_expiring_in_the_year_9999_is_422_naming_it(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed_policy(store)
    body = override(expires_at="9999-12-31T00:00:00Z")

    response = await api.post(OVERRIDE, json=body, headers=AUTH)

    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "expires_at"
    assert problem["error"].startswith(
        "expires_at 9999-12-31T00:00:00Z is more than 90 days ahead"
    )


async def test_an_override_may_expire_up_to_90_days_ahead(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed_policy(store)

    within = await api.post(
        OVERRIDE, json=override(expires_at=expiring_in(89)), headers=AUTH
    )
    beyond = await api.post(
        OVERRIDE, json=override(expires_at=expiring_in(91)), headers=AUTH
    )

    assert within.status_code == 200, within.json()
    assert (beyond.status_code, beyond.json()["field"]) == (422, "expires_at")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_an_override_body_sent_as_text_is_415_naming_json(
    api: httpx.AsyncClient, store: Store, method: str
) -> None:
    await seed_policy(store)
    headers = AUTH | {"content-type": "text/plain"}

    response = await api.request(
        method, OVERRIDE, content=json.dumps(override()), headers=headers
    )

    assert response.status_code == 415
    assert response.json() == {
        "error": "text/plain is not accepted; send application/json",
        "field": None,
    }


async def test_an_override_body_over_64_kib_is_413(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed_policy(store)
    limit = 64 * 1024
    # '{"reason": "' and '"}' are 14 bytes around the padding.
    at_limit = json.dumps({"reason": "x" * (limit - 14)}).encode()
    headers = AUTH | {"content-type": "application/json"}

    over = await api.post(OVERRIDE, content=at_limit + b" ", headers=headers)
    at = await api.post(OVERRIDE, content=at_limit, headers=headers)

    assert len(at_limit) == limit
    assert over.status_code == 413
    assert over.json()["error"] == f"the body is over {limit} bytes"
    assert at.status_code == 422


async def test_an_override_of_an_unknown_policy_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/freezes/payments/nothing/override", json=override(), headers=AUTH
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "not-bearer"],
)
async def test_writes_without_the_token_are_401(
    api: httpx.AsyncClient, store: Store, headers: dict[str, str]
) -> None:
    await seed_policy(store)

    response = await api.post(
        "/freezes/payments/release-gate/override", json=override(), headers=headers
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await store.active_overrides(now=datetime.now(UTC)) == []


async def test_reads_are_open_by_default(api: httpx.AsyncClient) -> None:
    for path in ("/slos", "/freezes", "/audit", "/", "/metrics"):
        assert (await api.get(path)).status_code == 200, path


async def test_a_wrong_method_is_405_with_allow(api: httpx.AsyncClient) -> None:
    response = await api.put("/slos")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_reads_need_the_token_in_token_mode(
    monkeypatch: pytest.MonkeyPatch, database_url: str, schema_name: str, store: Store
) -> None:
    async with open_api(
        monkeypatch,
        database_url=database_url,
        schema=schema_name,
        SLA_API_TOKEN=TOKEN,
        SLA_API_READ_AUTH="token",
    ) as (client, _):
        for path in ("/slos", "/freezes", "/audit", "/", "/metrics"):
            assert (await client.get(path)).status_code == 401, path
            assert (await client.get(path, headers=AUTH)).status_code == 200, path
        # Probes and the document stay open: they carry no data.
        assert (await client.get("/healthz/ready")).status_code == 204
        assert (await client.get("/openapi.json")).status_code == 200


async def test_writes_answer_503_when_no_token_is_configured(
    monkeypatch: pytest.MonkeyPatch, database_url: str, schema_name: str, store: Store
) -> None:
    await seed_policy(store)
    async with open_api(monkeypatch, database_url=database_url, schema=schema_name) as (
        client,
        _,
    ):
        response = await client.post(
            "/freezes/payments/release-gate/override", json=override(), headers=AUTH
        )
        read = await client.get("/slos")

    assert response.status_code == 503
    assert "SLA_API_TOKEN" in response.json()["error"]
    assert read.status_code == 200


def test_token_reads_without_a_token_stop_the_function_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sla.runtime.budget_api import BudgetApi
    from sla.runtime.settings import load_settings

    monkeypatch.setenv("SLA_API_READ_AUTH", "token")
    monkeypatch.delenv("SLA_API_TOKEN", raising=False)

    with pytest.raises(SystemExit) as stopped:
        BudgetApi(load_settings())

    assert stopped.value.code == 2
    assert "SLA_API_READ_AUTH" in capsys.readouterr().err


async def test_every_read_answers_with_redis_down(
    api: httpx.AsyncClient, store: Store, redis_server: RedisServer
) -> None:
    await seed_policy(store)
    await api.post(
        "/freezes/payments/release-gate/override", json=override(), headers=AUTH
    )
    assert keys((await api.get("/slos")).json())[0] == "payments/checkout"
    redis_server.stop()

    listed = await api.get("/slos")
    detail = await api.get("/slos/payments/checkout")
    history = await api.get("/slos/payments/checkout/history?from=0")
    for path in ("/freezes", "/audit", "/", "/metrics", "/healthz/ready"):
        assert (await api.get(path)).status_code in (200, 204), path

    assert keys(listed.json()) == ["payments/checkout", "payments/search", "shop/cart"]
    assert detail.json()["budget"]["error_budget"]["remaining"] == 0.25
    assert history.json()["points"][0]["remaining"] == 0.25


async def test_the_budget_is_read_from_redis_when_it_has_it(
    api: httpx.AsyncClient, store: Store, redis_server: RedisServer
) -> None:
    import redis.asyncio as redis

    await seed_three(store)
    newer = snapshot("shop/cart", 0.5, at=EVALUATED + timedelta(minutes=5))
    client = redis.Redis.from_url(redis_server.url)
    key = "sla:budget:latest:shop/cart"
    stamp = newer.evaluated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await client.set(key, stamp + newer.model_dump_json())
    await client.aclose()

    detail = (await api.get("/slos/shop/cart")).json()

    # Only Redis has this snapshot: the answer came from the cache.
    assert detail["budget"]["error_budget"]["remaining"] == 0.5


async def test_readiness_and_liveness(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz/live")).status_code == 204
    assert (await api.get("/healthz/ready")).status_code == 204


async def test_unknown_paths_are_404_as_json(api: httpx.AsyncClient) -> None:
    response = await api.get("/nothing/here")

    assert response.status_code == 404
    assert json.loads(response.text)["field"] is None
