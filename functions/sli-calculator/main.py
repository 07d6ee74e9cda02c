"""sli-calculator: budgets and burn rates of every SLO, once a minute.

Takes three events:

- the ``sla-tick`` ping: evaluate the whole catalogue at the ping's minute, or,
  when it holds more SLOs than ``SLA_EVALUATION_SHARD_SIZE``, fan out one
  ``dev.sla.slo.evaluate`` per shard instead;
- ``dev.sla.slo.evaluate``: evaluate one shard at the minute it carries;
- ``dev.sla.alert.received``: re-evaluate at once the SLOs an alert names, at its
  receipt minute, unless they were already evaluated at that minute.

Each evaluated SLO's snapshot is stored (one batch, in the transaction that records
the event), cached, and published as ``dev.sla.budget.calculated`` with the id
``namespace/name@time``. When no datasource could be asked at all, nothing is stored
and the answer is 503, so the broker retries the tick; SLOs of one unreachable
datasource among several are stored as ``no_data`` with the reason.

Work metrics go into the store with the snapshots: one calculation per SLO (``error``
when its figures could not be worked out, not when it simply had no traffic), the
evaluation's duration, and the Prometheus requests answered and failed. A 503 still
counts its failed requests and calculations, in a write of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sla.clients.store import Increment, Store
from sla.errors import DatasourceUnavailable, SLAError
from sla.model.events import (
    ALERT_RECEIVED,
    BUDGET_CALCULATED,
    PING,
    SLO_EVALUATE,
    AlertReceived,
    PingData,
    SloEvaluate,
)
from sla.model.slo import SLODefinition
from sla.model.snapshot import BudgetSnapshot
from sla.runtime import metrics
from sla.runtime.binding import EventRejected, OutgoingEvent
from sla.runtime.function import (
    Accept,
    Delivery,
    Function,
    Outcome,
    from_function,
    ping_source,
)
from sla.services.catalogue import load_slos
from sla.services.evaluation import EvaluationOptions, Evaluator
from sla.services.sharding import (
    alert_slo_keys,
    evaluation_minute,
    plan_shards,
    shard_event_id,
    with_components,
)

NAME = "sli-calculator"

LEASE_SECONDS = 300.0
"""The Knative Service's timeoutSeconds: a shard may take that long."""

NO_TRAFFIC: Final = ("absent:", "idle:")
"""How the budget engine begins the reason of a ``no_data`` snapshot whose SLO was
measured and found without series or events: a calculation that succeeded."""

logger = logging.getLogger("sla.events")


async def on_tick(delivery: Delivery[PingData]) -> Outcome:
    if delivery.time is None:
        raise EventRejected(400, "a tick needs its time attribute", field="time")
    at = evaluation_minute(delivery.time)
    store = await delivery.deps.store()
    catalogue = await load_slos(store)
    size = delivery.settings.evaluation_shard_size
    if len(catalogue) <= size:
        return await evaluate(delivery, list(catalogue.values()), at=at)
    shards = plan_shards(list(catalogue.values()), size=size)
    events = [
        delivery.emit(
            SLO_EVALUATE,
            id=shard_event_id(at, shard=index, shards=len(shards)),
            data=SloEvaluate(
                slos=keys, evaluated_at=at, shard=index, shards=len(shards)
            ),
        )
        for index, keys in enumerate(shards)
    ]
    return Outcome(
        events=events, detail=f"{len(catalogue)} SLOs in {len(shards)} shards"
    )


async def on_shard(delivery: Delivery[SloEvaluate]) -> Outcome:
    store = await delivery.deps.store()
    catalogue = await load_slos(store)
    slos = with_components(delivery.data.slos, catalogue)
    return await evaluate(delivery, slos, at=delivery.data.evaluated_at)


async def on_alert(delivery: Delivery[AlertReceived]) -> Outcome:
    alert = delivery.data
    received = alert.received_at or delivery.time or delivery.received_at
    at = evaluation_minute(received)
    store = await delivery.deps.store()
    catalogue = await load_slos(store)
    named = [
        key for key in alert_slo_keys(alert.labels, named=alert.slo) if key in catalogue
    ]
    if not named:
        return Outcome(detail="the alert names no SLO of the catalogue")
    latest = await store.latest_snapshots(named)
    due = [key for key in named if key not in latest or latest[key].evaluated_at < at]
    if not due:
        return Outcome(slos=named, detail="already evaluated at this minute")
    return await evaluate(delivery, with_components(due, catalogue), at=at)


async def evaluate(
    delivery: Delivery[Any], slos: Sequence[SLODefinition], *, at: datetime
) -> Outcome:
    if not slos:
        return Outcome(detail="no SLO to evaluate")
    settings = delivery.settings
    deps = delivery.deps
    store = await deps.store()
    evaluator = Evaluator(
        deps.datasources.client_for,
        default_datasource=deps.datasources.default_url,
        chunks=store,
        options=EvaluationOptions(
            chunk_seconds=settings.chunk_seconds,
            settle_seconds=settings.chunk_settle_seconds,
            scrape_interval=settings.scrape_interval_seconds,
        ),
    )
    started = time.monotonic()
    result = await evaluator.evaluate(slos, at=at)
    snapshots = result.snapshots
    counts = _work_counts(deps.datasources.take_query_counts(), snapshots, started)
    datasources = {_datasource(slo, deps.datasources.default_url) for slo in slos}
    if result.unavailable and datasources <= set(result.unavailable):
        await _count_failure(store, counts)
        reason = next(iter(result.unavailable.values()))
        raise DatasourceUnavailable(f"no datasource could be asked: {reason}")
    cache = await deps.cache()

    async def refresh_cache() -> None:
        await cache.put(snapshots)

    return Outcome(
        events=[budget_event(delivery, snapshot) for snapshot in snapshots],
        write=lambda tx: tx.put_snapshots(snapshots),
        after=refresh_cache,
        slos=[snapshot.slo for snapshot in snapshots],
        detail=_summary(snapshots),
        counts=counts,
    )


def calculation_failed(snapshot: BudgetSnapshot) -> bool:
    """Whether the SLO's figures could not be worked out (datasource, query or
    data error), as opposed to a window without traffic."""
    reason = snapshot.reason or ""
    return snapshot.status == "no_data" and not reason.startswith(NO_TRAFFIC)


def _work_counts(
    queries: tuple[int, int], snapshots: Sequence[BudgetSnapshot], started: float
) -> list[Increment]:
    failed = sum(1 for snapshot in snapshots if calculation_failed(snapshot))
    return [
        *metrics.calculations(len(snapshots) - failed, failed),
        *metrics.prometheus_queries(*queries),
        *metrics.CALCULATION_DURATION.observe(time.monotonic() - started),
    ]


async def _count_failure(store: Store, counts: Sequence[Increment]) -> None:
    # Nothing else is written on a 503; the failed queries are what the
    # SLAPrometheusQueriesFailing alert watches, so they are counted on their own.
    try:
        await store.add_to_counters(counts)
    except SLAError:
        logger.warning("could not count a failed evaluation")


def budget_event(delivery: Delivery[Any], snapshot: BudgetSnapshot) -> OutgoingEvent:
    return delivery.emit(
        BUDGET_CALCULATED,
        id=snapshot.snapshot_id,
        data=snapshot,
        subject=snapshot.slo,
        time=snapshot.evaluated_at,
    )


def _datasource(slo: SLODefinition, default: str) -> str:
    source = slo.spec.datasource
    url = source.url if source is not None and source.url else default
    return url.rstrip("/")


def _summary(snapshots: Sequence[BudgetSnapshot]) -> str:
    counts: dict[str, int] = {}
    for snapshot in snapshots:
        counts[snapshot.status] = counts.get(snapshot.status, 0) + 1
    return ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))


function = Function(
    NAME,
    accepts=[
        Accept(PING, on_tick, sources=ping_source("sla-tick")),
        Accept(SLO_EVALUATE, on_shard, sources=from_function(NAME)),
        Accept(ALERT_RECEIVED, on_alert, sources=from_function("webhook-intake")),
    ],
    lease_seconds=LEASE_SECONDS,
)
handler = function.target()
