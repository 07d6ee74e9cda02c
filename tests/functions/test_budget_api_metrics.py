"""budget-api's /metrics parsed with prometheus_client's parser, against the store;
and its status page, rendered and read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sla.clients.store import AuditEntry, Store
from tests.support.budget_api import (
    AUTH,
    TOKEN,
    open_api,
    policy_object,
    seed_objects,
    slo_object,
    snapshot,
)


@pytest.fixture
async def api(
    monkeypatch: pytest.MonkeyPatch, database_url: str, schema_name: str, store: Store
) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(
        monkeypatch, database_url=database_url, schema=schema_name, SLA_API_TOKEN=TOKEN
    ) as (client, _):
        yield client


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(api: httpx.AsyncClient) -> Samples:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def seed(store: Store) -> None:
    await seed_objects(
        store,
        slo_object("payments", "checkout"),
        slo_object("payments", "search"),
        slo_object("shop", "cart"),
        policy_object("payments", "release-gate", ["checkout"]),
    )
    await store.put_snapshots(
        [
            snapshot(
                "payments/checkout",
                0.25,
                status="warning",
                burn_rates={"1h": 2.5, "6h": 0.75},
            ),
            snapshot("payments/search", -0.5, status="exhausted"),
        ]
    )


async def test_budget_metrics_match_the_store(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed(store)

    samples = await scrape(api)

    checkout = {"slo": "payments/checkout", "namespace": "payments"}
    search = {"slo": "payments/search", "namespace": "payments"}
    # remaining 0.25 → 25 %; consumed 1 − 0.25 = 0.75 → 75 %.
    assert value(samples, "sla_budget_remaining_percent", **checkout) == 25.0
    assert value(samples, "sla_budget_consumed_percent", **checkout) == 75.0
    # Overspent: remaining −0.5 → −50 %, consumed 1.5 → 150 %.
    assert value(samples, "sla_budget_remaining_percent", **search) == -50.0
    assert value(samples, "sla_budget_consumed_percent", **search) == 150.0
    assert value(samples, "sla_burn_rate", window="1h", **checkout) == 2.5
    assert value(samples, "sla_burn_rate", window="6h", **checkout) == 0.75
    assert value(samples, "sla_budget_status", status="warning", **checkout) == 1
    assert value(samples, "sla_budget_status", status="healthy", **checkout) == 0
    cart = {"slo": "shop/cart", "namespace": "shop"}
    assert value(samples, "sla_budget_status", status="no_data", **cart) == 1
    assert ("sla_budget_remaining_percent", frozenset(cart.items())) not in samples


async def test_catalogue_counts_and_work_series_are_exposed(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed(store)

    samples = await scrape(api)

    assert value(samples, "sla_slos_total", namespace="payments") == 2
    assert value(samples, "sla_slos_total", namespace="shop") == 1
    assert value(samples, "sla_policies_total", namespace="payments") == 1
    # Work counters exist at zero from the start, so absent() and rate() see them.
    assert ("sla_calculations_total", frozenset({("outcome", "ok")})) in samples
    assert ("sla_prometheus_queries_total", frozenset({("outcome", "error")})) in (
        samples
    )


async def test_freeze_and_violation_counters_come_from_the_audit_log(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed(store)
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"expires_at": expires, "reason": "drill", "actor": "alice"}
    path = "/freezes/payments/release-gate/override"
    await api.post(path, json={"action": "force", **body}, headers=AUTH)
    await api.post(path, json={"action": "lift", **body}, headers=AUTH)
    await api.post(path, json={"action": "force", **body}, headers=AUTH)
    await store.append_audit(
        AuditEntry(
            at=datetime.now(UTC),
            actor="policy-evaluator",
            kind="slo-violation",
            subject="payments/search",
            outcome="violated",
        )
    )

    samples = await scrape(api)

    policy = {"namespace": "payments", "policy": "payments/release-gate"}
    assert value(samples, "sla_freezes_activated_total", **policy) == 2
    assert value(samples, "sla_freezes_resolved_total", **policy) == 1
    assert value(samples, "sla_freezes_active", **policy) == 1
    search = {"slo": "payments/search", "namespace": "payments"}
    assert value(samples, "sla_slo_violations_total", **search) == 1


async def test_the_status_page_shows_every_slo_with_its_figures(
    api: httpx.AsyncClient, store: Store
) -> None:
    await seed(store)
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await api.post(
        "/freezes/payments/release-gate/override",
        json={
            "action": "force",
            "expires_at": expires,
            "reason": "<b>drill</b>",
            "actor": "alice",
        },
        headers=AUTH,
    )

    response = await api.get("/")

    page = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert '<meta http-equiv="refresh"' in page
    for name in ("payments/checkout", "payments/search", "shop/cart"):
        assert name in page
    assert "25.0 % left" in page and "width:25.0%" in page
    assert "overspent 50.0 %" in page and "width:0.0%" in page
    assert "1h 2.50" in page and "warning" in page and "no data" in page
    # The freeze, with its reason escaped.
    assert "payments/release-gate" in page
    assert "&lt;b&gt;drill&lt;/b&gt;" in page and "<b>drill" not in page
    assert "<script" not in page
