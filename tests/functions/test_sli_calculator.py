"""sli-calculator through its ASGI app: real Prometheus, PostgreSQL, Redis and a sink.

History: two days of requests on a 60 s grid, 60 a minute. Job ``api`` fails 1 % of
requests, job ``bad`` 5 %, job ``ok`` 1 % as well. Every SLO has a 1-day window, an
objective of 98 % (allowed bad ratio B = 0.02) and one page row (1h/5m, factor 10).

The tick's time is 42 s past the end of the history; rounded down to the minute it
is the end itself, on the grid, where ``increase()`` is exact:

- ``api``: total = 60 × 1440 = 86,400; bad = 1 % of it = 864; e = 0.01;
  consumed = e / B = 0.5; remaining = 0.5; burn rate 0.5 < 10: ``healthy``.
- ``bad``: bad = 5 % = 4,320; e = 0.05; consumed = 2.5; remaining = −1.5:
  ``exhausted``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
import redis.asyncio as redis

from sla.clients.store import CatalogueEntry, Store
from sla.model.snapshot import BudgetSnapshot
from tests.support.functions import (
    RecordingSink,
    binary_event,
    client_for,
    function_env,
    load_function,
    structured_event,
)
from tests.support.prometheus import PrometheusFactory, Timeline, requests
from tests.support.servers import free_port

pytestmark = pytest.mark.prometheus

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
END = DAY0 + timedelta(days=2)
TICK_TIME = "2026-01-03T00:00:42Z"
STAMP = "2026-01-03T00:00:00Z"
TICK_SOURCE = "/apis/v1/namespaces/sla-system/pingsources/sla-tick"
ROWS = [{"severity": "page", "longWindow": "1h", "shortWindow": "5m", "factor": 10}]


def history() -> list[Any]:
    timeline = Timeline(start=DAY0, end=END)
    series: list[Any] = []
    for job, ratio in (("api", Fraction(1, 100)), ("bad", Fraction(1, 20))):
        series += requests(
            timeline=timeline, per_step=60, error_ratio=ratio, labels={"job": job}
        )
    series += requests(
        timeline=timeline,
        per_step=60,
        error_ratio=Fraction(1, 100),
        labels={"job": "ok"},
    )
    return series


def slo_document(name: str, job: str, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": "SLODefinition",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {
            "service": "api",
            "objective": 98,
            "window": "1d",
            "indicator": {
                "ratio": {
                    "bad": {"metric": f'http_requests_total{{job="{job}",code="500"}}'},
                    "total": {"metric": f'http_requests_total{{job="{job}"}}'},
                }
            },
            "alerting": {"rows": ROWS},
        },
    }


async def add_slos(store: Store, *jobs: str) -> None:
    for job in jobs:
        document = slo_document(job, job)
        await store.upsert_catalogue(
            CatalogueEntry(
                kind="SLODefinition",
                namespace="shop",
                name=job,
                source="kubernetes",
                generation=1,
                document=document,
            )
        )


@pytest.fixture
def prometheus_url(prometheus_factory: PrometheusFactory) -> str:
    return prometheus_factory(history())


@pytest.fixture
async def serve(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    redis_url: str,
    prometheus_url: str,
    sink: RecordingSink,
) -> AsyncIterator[Callable[..., Any]]:
    """Loads sli-calculator with the test's settings (plus any given) and stops it."""
    modules: list[Any] = []

    def start(**settings: str) -> Any:
        function_env(
            monkeypatch,
            database_url=database_url,
            schema=schema_name,
            SLA_PROMETHEUS_URL=prometheus_url,
            SLA_REDIS_URL=redis_url,
            K_SINK=sink.url,
            **settings,
        )
        module, app = load_function("sli-calculator")
        modules.append(module)
        return app

    yield start
    for module in modules:
        await module.function.aclose()


@pytest.fixture
def calculator(serve: Callable[..., Any]) -> Any:
    return serve()


def tick(event_id: str = "tick-1", **kwargs: Any) -> tuple[dict[str, str], bytes]:
    return binary_event(
        "dev.knative.sources.ping",
        source=kwargs.pop("source", TICK_SOURCE),
        id=event_id,
        time=kwargs.pop("time", TICK_TIME),
        **kwargs,
    )


async def post(app: Any, event: tuple[dict[str, str], bytes]) -> Any:
    headers, body = event
    async with client_for(app) as client:
        return await client.post("/", headers=headers, content=body)


async def stored_snapshots(store: Store, *slos: str) -> dict[str, BudgetSnapshot]:
    return await store.latest_snapshots(list(slos))


async def test_tick_evaluates_every_slo_at_the_ping_minute(
    calculator: Any, store: Store, sink: RecordingSink
) -> None:
    """Two SLOs: both stored, both published to the sink, the answer empty."""
    await add_slos(store, "api", "bad")

    answer = await post(calculator, tick())

    assert answer.status_code == 202
    assert answer.content == b""
    snapshots = await stored_snapshots(store, "shop/api", "shop/bad")
    api, bad = snapshots["shop/api"], snapshots["shop/bad"]
    assert api.evaluated_at == END
    assert (api.events.total, api.events.bad) == (86_400, 864)
    assert api.error_budget.consumed == pytest.approx(0.5)
    assert api.status == "healthy"
    assert (bad.events.total, bad.events.bad) == (86_400, 4_320)
    assert bad.error_budget.remaining == pytest.approx(-1.5)
    assert bad.status == "exhausted"
    events = {event.id: event for event in sink.events()}
    assert sorted(events) == [f"shop/api@{STAMP}", f"shop/bad@{STAMP}"]
    published = events[f"shop/api@{STAMP}"]
    assert published.type == "dev.sla.budget.calculated"
    assert published.headers["content-type"] == "application/json"
    assert published.headers["ce-source"] == "/sla/sli-calculator"
    assert published.headers["ce-subject"] == "shop/api"
    data = published.data()
    assert data["slo"] == "shop/api"
    assert data["evaluated_at"] == STAMP
    assert data["error_budget"]["remaining"] == pytest.approx(0.5)


async def test_tick_refreshes_the_latest_budget_cache(
    calculator: Any, store: Store, redis_url: str
) -> None:
    await add_slos(store, "api")
    client = redis.Redis.from_url(redis_url)
    await client.delete("sla:budget:latest:shop/api")

    await post(calculator, tick())

    try:
        cached = await client.get("sla:budget:latest:shop/api")
    finally:
        await client.aclose()
    assert cached is not None
    assert json.loads(cached[27:])["evaluated_at"] == STAMP


async def test_one_slo_is_answered_with_its_event_as_the_reply(
    calculator: Any, store: Store, sink: RecordingSink
) -> None:
    await add_slos(store, "api")

    answer = await post(calculator, tick())

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["ce-specversion"] == "1.0"
    assert answer.headers["ce-type"] == "dev.sla.budget.calculated"
    assert answer.headers["ce-id"] == f"shop/api@{STAMP}"
    assert answer.json()["status"] == "healthy"
    assert sink.events() == []


async def test_redelivered_tick_gives_the_first_answer_and_reposts_same_ids(
    calculator: Any, store: Store, sink: RecordingSink
) -> None:
    await add_slos(store, "api", "bad")

    first = await post(calculator, tick())
    again = await post(calculator, tick())

    assert (first.status_code, again.status_code) == (202, 202)
    ids = sink.ids()
    assert sorted(ids) == sorted([f"shop/api@{STAMP}", f"shop/bad@{STAMP}"] * 2)
    history_rows = await store.history("shop/api", start=DAY0, end=END)
    assert len(history_rows) == 1


async def test_tick_over_the_shard_size_fans_out_shards_instead(
    serve: Callable[..., Any], store: Store, sink: RecordingSink
) -> None:
    """Three SLOs, shards of two: two evaluate events, nothing evaluated yet."""
    calculator = serve(SLA_EVALUATION_SHARD_SIZE="2")
    await add_slos(store, "api", "bad", "ok")

    answer = await post(calculator, tick())

    assert answer.status_code == 202
    events = sink.events()
    assert sorted(e.id for e in events) == [
        f"tick/{STAMP}/shard-1-of-2",
        f"tick/{STAMP}/shard-2-of-2",
    ]
    shards = sorted((e.data() for e in events), key=lambda d: d["shard"])
    assert [d["slos"] for d in shards] == [["shop/api", "shop/bad"], ["shop/ok"]]
    assert all(d["evaluated_at"] == STAMP for d in shards)
    assert await stored_snapshots(store, "shop/api") == {}


async def test_shard_event_evaluates_its_slos_at_its_time(
    calculator: Any, store: Store
) -> None:
    await add_slos(store, "api", "bad")
    event = structured_event(
        "dev.sla.slo.evaluate",
        source="/sla/sli-calculator",
        id=f"tick/{STAMP}/shard-2-of-2",
        data={
            "version": 1,
            "slos": ["shop/bad"],
            "evaluated_at": STAMP,
            "shard": 1,
            "shards": 2,
        },
    )

    answer = await post(calculator, event)

    assert answer.status_code == 200
    assert answer.headers["ce-id"] == f"shop/bad@{STAMP}"
    assert set(await stored_snapshots(store, "shop/api", "shop/bad")) == {"shop/bad"}


def alert(event_id: str, labels: dict[str, str]) -> tuple[dict[str, str], bytes]:
    return binary_event(
        "dev.sla.alert.received",
        source="/sla/webhook-intake",
        id=event_id,
        data={
            "version": 1,
            "status": "firing",
            "labels": labels,
            "startsAt": "2026-01-02T23:50:00Z",
            "fingerprint": "f00d",
            "slo": None,
            "receivedAt": "2026-01-03T00:00:17Z",
        },
    )


async def test_alert_reevaluates_the_slo_it_names_at_its_receipt_minute(
    calculator: Any, store: Store
) -> None:
    await add_slos(store, "api", "bad")

    answer = await post(
        calculator, alert("a-1", {"slo_name": "bad", "namespace": "shop"})
    )

    assert answer.status_code == 200
    assert answer.headers["ce-id"] == f"shop/bad@{STAMP}"
    assert set(await stored_snapshots(store, "shop/api", "shop/bad")) == {"shop/bad"}


async def test_alert_skips_an_slo_already_evaluated_at_that_minute(
    calculator: Any, store: Store, sink: RecordingSink
) -> None:
    await add_slos(store, "api", "bad")
    await post(calculator, tick())

    answer = await post(calculator, alert("a-2", {"slo": "shop/api"}))

    assert answer.status_code == 202
    assert answer.content == b""


async def test_alert_naming_no_known_slo_is_accepted_and_does_nothing(
    calculator: Any, store: Store
) -> None:
    answer = await post(
        calculator, alert("a-3", {"sloth_slo": "nope", "namespace": "x"})
    )

    assert answer.status_code == 202


async def test_sink_down_answers_503_and_the_redelivery_completes_once(
    calculator: Any, store: Store, sink: RecordingSink
) -> None:
    await add_slos(store, "api", "bad")
    sink.stop()

    failed = await post(calculator, tick())
    sink.start()
    retried = await post(calculator, tick())

    assert failed.status_code == 503
    assert failed.headers["ce-type"] == "dev.sla.event.rejected"
    assert retried.status_code == 202
    assert sorted(sink.ids()) == [f"shop/api@{STAMP}", f"shop/bad@{STAMP}"]
    assert len(await store.history("shop/api", start=DAY0, end=END)) == 1


async def test_unreachable_prometheus_answers_503_and_stores_nothing(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    schema_name: str,
    store: Store,
    sink: RecordingSink,
) -> None:
    function_env(
        monkeypatch,
        database_url=database_url,
        schema=schema_name,
        SLA_PROMETHEUS_URL=f"http://127.0.0.1:{free_port()}",
        SLA_PROMETHEUS_TIMEOUT_SECONDS="1",
        K_SINK=sink.url,
    )
    module, app = load_function("sli-calculator")
    await add_slos(store, "api")
    try:
        answer = await post(app, tick())
    finally:
        await module.function.aclose()

    assert answer.status_code == 503
    assert "no datasource could be asked" in answer.json()["reason"]
    assert await stored_snapshots(store, "shop/api") == {}
    assert await store.lookup_event(f"sli-calculator {TICK_SOURCE}", "tick-1") is None


async def test_a_tick_without_its_time_is_refused(
    calculator: Any, store: Store
) -> None:
    headers, body = tick()
    del headers["ce-time"]

    answer = await post(calculator, (headers, body))

    assert answer.status_code == 400
    assert answer.json()["field"] == "time"
