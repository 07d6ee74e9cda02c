"""Evaluation against a real Prometheus holding history written by the test.

The history: three days of requests on a 60 s grid, 60 a minute with 1 % errors,
with a one-hour outage at 50 % errors on the second day, plus a latency histogram
and a probe gauge. Evaluation instants sit on the grid, where ``increase()`` is
exact (see tests/support/prometheus.py), so the expected counts below are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from sla.clients.prometheus import PrometheusClient, RetryPolicy
from sla.clients.store import Store
from sla.model.slo import SLODefinition
from sla.model.snapshot import BudgetSnapshot
from sla.services.evaluation import EvaluationOptions, Evaluator
from sla.services.queries import slice_history_key
from tests.support.prometheus import (
    FakePrometheus,
    PrometheusFactory,
    Reply,
    Timeline,
    bool_gauge,
    counter,
    free_port,
    histogram,
    outage,
    requests,
)

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
END = DAY0 + timedelta(days=3)
OUTAGE = (DAY0 + timedelta(days=1, hours=10), DAY0 + timedelta(days=1, hours=11))
PROBE_DOWN = (DAY0 + timedelta(days=2, hours=6), DAY0 + timedelta(days=2, hours=7))
GAP = (DAY0 + timedelta(days=2, hours=5), DAY0 + timedelta(days=2, hours=6))
RESET = DAY0 + timedelta(days=1, hours=12, seconds=30)
H, M = 3600, 60

ROWS = [
    {"severity": "page", "longWindow": "1h", "shortWindow": "5m", "factor": 5},
    {"severity": "ticket", "longWindow": "6h", "shortWindow": "30m", "factor": 2},
]


def history() -> list[Any]:
    timeline = Timeline(start=DAY0, end=END)
    return [
        *requests(
            timeline=timeline,
            per_step=60,
            error_ratio=Fraction(1, 100),
            labels={"job": "api"},
            phases=[outage(*OUTAGE, error_ratio=Fraction(1, 2))],
        ),
        *histogram(
            "http_request_duration_seconds",
            timeline=timeline,
            per_step=60,
            # Written "1.0" as Python clients do; the SLO says threshold 1.
            buckets=[("0.5", Fraction(9, 10)), ("1.0", Fraction(19, 20))],
            labels={"job": "api"},
        ),
        bool_gauge("probe_success", timeline=timeline, down=[PROBE_DOWN]),
        # One request every 20 minutes, one in three failing.
        *requests(
            timeline=timeline,
            per_step=Fraction(1, 20),
            error_ratio=Fraction(1, 3),
            labels={"job": "low"},
        ),
        *requests(
            timeline=timeline,
            per_step=60,
            error_ratio=Fraction(1, 100),
            labels={"job": "restarted"},
            resets=[RESET],
        ),
        *requests(
            timeline=timeline,
            per_step=60,
            error_ratio=Fraction(1, 100),
            labels={"job": "gappy"},
            gaps=[GAP],
        ),
        counter("batch_jobs_total", timeline=timeline, per_step=0),
        # Good scraped a beat after total: it runs one request a minute ahead.
        counter("skew_good_total", timeline=timeline, per_step=61),
        counter("skew_all_total", timeline=timeline, per_step=60),
    ]


def availability_of(job: str) -> dict[str, Any]:
    return {
        "ratio": {
            "bad": {"metric": f'http_requests_total{{job="{job}", code="500"}}'},
            "total": {"metric": f'http_requests_total{{job="{job}"}}'},
        }
    }


def slo(name: str, indicator: dict[str, Any], **spec: Any) -> SLODefinition:
    body = {
        "service": "api",
        "objective": 95,
        "window": "2d",
        "indicator": indicator,
        "alerting": {"rows": ROWS},
        **spec,
    }
    return SLODefinition.model_validate(
        {"metadata": {"name": name, "namespace": "shop"}, "spec": body}
    )


AVAILABILITY = {
    "ratio": {
        "bad": {"metric": 'http_requests_total{job="api", code="500"}'},
        "total": {"metric": 'http_requests_total{job="api"}'},
    }
}
LATENCY = {
    "latency": {"histogram": 'http_request_duration_seconds{job="api"}', "threshold": 1}
}
PROBE = {"boolGauge": {"metric": "probe_success"}}


@pytest.fixture(scope="module")
def prometheus_url(prometheus_factory: PrometheusFactory) -> str:
    return prometheus_factory(history())


Evaluate = Callable[..., Any]


@pytest.fixture
def evaluate(prometheus_url: str) -> Evaluate:
    async def run(
        slos: list[SLODefinition],
        at: datetime,
        *,
        store: Store | None = None,
        options: EvaluationOptions | None = None,
    ) -> dict[str, BudgetSnapshot]:
        async with PrometheusClient(prometheus_url) as client:
            evaluator = Evaluator(
                lambda _url: client,
                default_datasource=prometheus_url,
                chunks=store,
                options=options or EvaluationOptions(),
            )
            result = await evaluator.evaluate(slos, at=at)
        assert result.unavailable == {}
        return {snap.slo.split("/")[1]: snap for snap in result.snapshots}

    return run


async def afresh(
    evaluate: Evaluate, definition: list[SLODefinition], at: datetime
) -> BudgetSnapshot:
    """The one SLO's snapshot evaluated afresh, without chunk history."""
    [snapshot] = (
        await evaluate(definition, at, options=EvaluationOptions(incremental=False))
    ).values()
    return snapshot


async def test_availability_over_two_days_counts_the_outage(evaluate: Evaluate) -> None:
    """Window day 1 00:00 – day 3 00:00: 48 h × 3,600 requests, 47 h × 36 errors
    plus 1,800 in the outage hour."""
    snaps = await evaluate([slo("availability", AVAILABILITY)], END)
    snap = snaps["availability"]
    bad, total = 47 * 36 + 1800, 48 * 3600
    assert snap.events.model_dump() == {
        "good": total - bad,
        "bad": bad,
        "total": total,
    }
    consumed = Fraction(bad, total) / Fraction(5, 100)
    assert snap.error_budget.consumed == float(consumed)
    assert snap.error_budget.remaining == float(1 - consumed)
    # The last hour is steady: 1 % errors against 5 % allowed is a burn of 0.2.
    assert snap.burn_rates["1h"] == float(Fraction(36, 3600) / Fraction(5, 100))
    assert snap.status == "healthy"


async def test_outage_fires_the_page_row_while_it_lasts(evaluate: Evaluate) -> None:
    """At 10:30 on day 1: the last hour is 30 steady minutes (18 errors) and 30 outage
    minutes (900 errors); the last 5 minutes are all outage (150 of 300)."""
    at = OUTAGE[0] + timedelta(minutes=30)
    snap = (await evaluate([slo("availability", AVAILABILITY)], at))["availability"]
    long_burn = Fraction(18 + 900, 3600) / Fraction(5, 100)
    short_burn = Fraction(150, 300) / Fraction(5, 100)
    assert snap.burn_rates["1h"] == float(long_burn)
    assert snap.burn_rates["5m"] == float(short_burn)
    page = snap.alerts[0]
    assert page.firing and long_burn > 5 and short_burn > 5
    assert snap.status == "critical"


async def test_latency_bucket_written_as_one_point_zero_matches_threshold_one(
    evaluate: Evaluate,
) -> None:
    """19 in 20 requests are under 1 s: 5 % slow, exactly the 95 % objective."""
    snap = (await evaluate([slo("latency", LATENCY)], END))["latency"]
    total = 48 * 3600
    assert snap.events.total == total
    assert snap.events.good == total * 19 / 20
    assert snap.error_budget.remaining == 0
    assert snap.status == "exhausted"


async def test_bool_gauge_counts_samples_at_one(evaluate: Evaluate) -> None:
    """Day 2 06:00–07:00 the probe reads 0: 60 of the 2,880 samples in two days.

    The window is left-open, (day 1 00:00, day 3 00:00], so a sample on its start
    belongs to the window before, as it does in adjacent chunks.
    """
    snap = (await evaluate([slo("probe", PROBE, objective=99)], END))["probe"]
    assert snap.events.total == 2 * 24 * 60
    assert snap.events.bad == 60


async def test_absent_series_are_no_data(evaluate: Evaluate) -> None:
    missing = {
        "ratio": {"good": {"metric": "nope_total"}, "total": {"metric": "nope_total"}}
    }
    snap = (await evaluate([slo("missing", missing)], END))["missing"]
    assert snap.status == "no_data"
    assert snap.reason is not None and snap.reason.startswith("absent")


async def test_idle_window_is_no_data_told_apart(evaluate: Evaluate) -> None:
    """The batch job counter exists and never moves: idle, not absent."""
    idle = {
        "ratio": {
            "good": {"metric": "batch_jobs_total"},
            "total": {"metric": "batch_jobs_total"},
        }
    }
    snap = (await evaluate([slo("idle", idle)], END))["idle"]
    assert snap.status == "no_data"
    assert snap.reason is not None and snap.reason.startswith("idle")
    assert snap.events.total == 0


async def test_low_traffic_counts_every_request(evaluate: Evaluate) -> None:
    """Three requests an hour, one failing: 144 requests and 48 errors in 2 days."""
    snap = (await evaluate([slo("low", availability_of("low"))], END))["low"]
    assert (snap.events.total, snap.events.bad) == (144, 48)
    # 1 in 3 failing against 5 % allowed: the budget is long gone.
    assert snap.error_budget.remaining == float(1 - Fraction(1, 3) / Fraction(1, 20))
    assert snap.status == "exhausted"


async def test_counter_reset_loses_no_events(evaluate: Evaluate) -> None:
    snap = (await evaluate([slo("reset", availability_of("restarted"))], END))["reset"]
    assert (snap.events.total, snap.events.bad) == (48 * 3600, 48 * 36)


async def test_good_above_total_is_a_data_error_naming_the_slo(
    evaluate: Evaluate,
) -> None:
    skew = {
        "ratio": {
            "good": {"metric": "skew_good_total"},
            "total": {"metric": "skew_all_total"},
        }
    }
    snap = (await evaluate([slo("skew", skew)], END))["skew"]
    assert snap.status == "no_data"
    assert snap.reason is not None
    assert "data error" in snap.reason and "exceeds total" in snap.reason
    assert "shop/skew" in snap.reason


async def test_scrape_gap_inside_the_window_costs_incremental_only_the_gap(
    evaluate: Evaluate, store: Store
) -> None:
    """A fresh query spans the gap (last − first); chunk history loses the chunk
    that held no sample at all: at most the gap's 3,600 requests, stated here as
    the tolerance of chunked accounting across scrape gaps."""
    definition = [slo("gappy", availability_of("gappy"))]
    fresh = await afresh(evaluate, definition, END)
    warm = (await evaluate(definition, END, store=store))["gappy"]
    assert fresh.events.total == 48 * 3600
    assert 0 <= fresh.events.total - warm.events.total <= 3600


async def test_bad_query_fails_only_its_own_slo(evaluate: Evaluate) -> None:
    broken = {"ratio": {"good": {"metric": "up{"}, "total": {"metric": "up"}}}
    snaps = await evaluate(
        [slo("broken", broken), slo("availability", AVAILABILITY)], END
    )
    assert snaps["broken"].status == "no_data"
    assert "rejected" in (snaps["broken"].reason or "")
    assert snaps["availability"].status == "healthy"


async def test_composite_weights_component_events(evaluate: Evaluate) -> None:
    composite = {
        "composite": {
            "components": [
                {"slo": "availability", "weight": 1},
                {"slo": "latency", "weight": 2},
            ]
        }
    }
    snaps = await evaluate(
        [
            slo("availability", AVAILABILITY),
            slo("latency", LATENCY),
            slo("both", composite),
        ],
        END,
    )
    total = 48 * 3600
    bad = (47 * 36 + 1800) + 2 * (total // 20)
    assert snaps["both"].events.total == 3 * total
    assert snaps["both"].events.bad == bad


@pytest.mark.parametrize(
    "indicator",
    [AVAILABILITY, LATENCY, PROBE],
    ids=["ratio", "latency", "bool-gauge"],
)
async def test_incremental_equals_fresh_over_a_day_of_ticks(
    evaluate: Evaluate, store: Store, indicator: dict[str, Any]
) -> None:
    """On the grid, chunk history plus exact edges give the fresh figures exactly.

    Ticks run every 17 minutes across the outage, so edges of every length and the
    settle and revisit paths are all exercised; the tolerance is zero because no
    boundary falls off the scrape grid.
    """
    definition = [slo("one", indicator)]
    at = DAY0 + timedelta(days=1, hours=8)
    while at < DAY0 + timedelta(days=1, hours=14):
        warm = (await evaluate(definition, at, store=store))["one"]
        fresh = await afresh(evaluate, definition, at)
        assert warm.events == fresh.events, at
        assert warm.burn_rates == fresh.burn_rates, at
        at += timedelta(minutes=17)


async def test_changed_query_starts_a_new_chunk_history(
    evaluate: Evaluate, store: Store
) -> None:
    await evaluate([slo("one", AVAILABILITY)], END, store=store)
    changed = {
        "ratio": {
            "good": {"metric": 'http_requests_total{job="api", code="200"}'},
            "total": {"metric": 'http_requests_total{job="api"}'},
        }
    }
    snap = (await evaluate([slo("one", changed)], END, store=store))["one"]
    bad, total = 47 * 36 + 1800, 48 * 3600
    assert snap.events.bad == bad and snap.events.total == total


class ListingCount:
    """The store as the chunk history, counting the listings of stored chunks."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.listings = 0
        self.chunk_inventory = store.chunk_inventory
        self.chunk_sums = store.chunk_sums
        self.put_chunks = store.put_chunks

    async def get_chunks(self, *args: Any, **kwargs: Any) -> Any:
        self.listings += 1
        return await self.store.get_chunks(*args, **kwargs)


async def test_a_new_hour_is_read_without_listing_the_history(
    evaluate: Evaluate, store: Store
) -> None:
    # An hour after a full history was read, one more chunk has closed: the
    # inventory's count and newest chunk tell that it is the only one missing.
    definition = [slo("one", AVAILABILITY)]
    at = DAY0 + timedelta(days=2, hours=3, minutes=7)
    await evaluate(definition, at, store=store)
    history = ListingCount(store)

    for later in (at + timedelta(hours=1), at + timedelta(hours=3)):
        warm = (await evaluate(definition, later, store=history))["one"]
        fresh = await afresh(evaluate, definition, later)
        assert warm.events == fresh.events, later

    assert history.listings == 0


async def test_a_hole_in_the_history_is_found_and_read_again(
    evaluate: Evaluate, store: Store
) -> None:
    definition = [slo("one", AVAILABILITY)]
    at = DAY0 + timedelta(days=2, hours=3, minutes=7)
    await evaluate(definition, at, store=store)
    async with store._connection() as connection:
        deleted = await connection.execute(
            "DELETE FROM count_chunks WHERE chunk_start = $1",
            DAY0 + timedelta(days=1, hours=12),
        )
    assert deleted == "DELETE 1"
    history = ListingCount(store)

    warm = (await evaluate(definition, at, store=history))["one"]
    fresh = await afresh(evaluate, definition, at)

    assert history.listings == 1
    assert warm.events == fresh.events
    assert (await evaluate(definition, at, store=ListingCount(store)))[
        "one"
    ].events == fresh.events


SLICED = {
    "budgetingMethod": "Timeslices",
    "timeslice": {"length": "5m", "target": 95},
}
RATIO_SLICED = {"budgetingMethod": "RatioTimeslices", "timeslice": {"length": "5m"}}


class RangeLog(PrometheusClient):
    """The real client, noting the span of every range query: (start, end, step)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.spans: list[tuple[int, int, int]] = []

    async def range(self, expr: str, **window: Any) -> Any:
        span = (window["start"], window["end"], window["step"])
        self.spans.append(
            (int(span[0].timestamp()), int(span[1].timestamp()), int(span[2].seconds))
        )
        return await super().range(expr, **window)


async def sliced_snapshot(
    url: str, at: datetime, *, store: Store | None, **spec: Any
) -> tuple[BudgetSnapshot, list[tuple[int, int, int]]]:
    async with RangeLog(url) as client:
        evaluator = Evaluator(
            lambda _url: client,
            default_datasource=url,
            chunks=store,
            options=EvaluationOptions(incremental=store is not None),
        )
        result = await evaluator.evaluate([slo("sliced", AVAILABILITY, **spec)], at=at)
    return result.snapshots[0], client.spans


async def test_timeslices_count_good_slices_from_chunks_and_edges(
    prometheus_url: str, store: Store
) -> None:
    """Window day 1 00:00 – day 3 00:00 in 5m slices: 576, each 99 % good but the
    12 of the outage hour at 50 %, below the 95 % slice target."""
    slices, bad = 2 * 24 * 12, 12
    expected = (slices - bad) / slices

    fresh, _ = await sliced_snapshot(prometheus_url, END, store=None, **SLICED)
    cold, _ = await sliced_snapshot(prometheus_url, END, store=store, **SLICED)
    warm, spans = await sliced_snapshot(prometheus_url, END, store=store, **SLICED)

    assert fresh.sli == cold.sli == warm.sli == expected
    # Warm, only the slices outside whole settled chunks are asked: the last
    # hour (not settled at 00:00) and nothing before, the window starting on
    # the hour.
    asked = [(end - start) // step + 1 for start, end, step in spans]
    assert sum(asked) == 12


async def test_ratio_timeslices_average_the_slice_ratios(
    prometheus_url: str, store: Store
) -> None:
    slices, outage = 2 * 24 * 12, 12
    expected = ((slices - outage) * 0.99 + outage * 0.5) / slices

    snap, _ = await sliced_snapshot(prometheus_url, END, store=store, **RATIO_SLICED)

    assert snap.sli == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("method", [SLICED, RATIO_SLICED], ids=["time", "ratio"])
async def test_incremental_timeslices_equal_fresh_over_ticks(
    prometheus_url: str, store: Store, method: dict[str, Any]
) -> None:
    """Ticks every 17 minutes across the outage: slices from the chunk history and
    edges asked directly are the fresh slices exactly, revisits included."""
    at = DAY0 + timedelta(days=1, hours=8, minutes=3)
    while at < DAY0 + timedelta(days=1, hours=14):
        warm, spans = await sliced_snapshot(prometheus_url, at, store=store, **method)
        fresh, _ = await sliced_snapshot(prometheus_url, at, store=None, **method)
        assert (warm.sli, warm.error_budget) == (fresh.sli, fresh.error_budget), at
        at += timedelta(minutes=17)
    # The last tick asked for the edges and the due revisits only, never the
    # whole two days (576 slices).
    asked = sum((end - start) // step + 1 for start, end, step in spans)
    assert asked < 576 // 4
    # Every chunk that closed an hour (the revisit delay) before the last tick
    # has had its second read; the later ones wait for theirs.
    last = at - timedelta(minutes=17)
    key = slice_history_key(slo("sliced", AVAILABILITY, **method).spec)
    assert key is not None
    chunks = await store.get_chunks(
        key, prometheus_url, H, start=DAY0, end=DAY0 + timedelta(days=3)
    )
    assert chunks
    for chunk in chunks:
        due = chunk.chunk_start + timedelta(hours=2) <= last
        assert chunk.revisited == due, chunk.chunk_start


async def test_a_slice_history_is_kept_apart_from_the_event_history(
    prometheus_url: str, store: Store
) -> None:
    """The same indicator with and without slices, then sliced at another length:
    three histories, none mixing with another."""
    await sliced_snapshot(prometheus_url, END, store=store)
    snap, _ = await sliced_snapshot(prometheus_url, END, store=store, **SLICED)
    ten = {
        "budgetingMethod": "Timeslices",
        "timeslice": {"length": "10m", "target": 95},
    }
    ten_snap, _ = await sliced_snapshot(prometheus_url, END, store=store, **ten)

    assert snap.sli == (576 - 12) / 576
    assert ten_snap.sli == (288 - 6) / 288
    assert snap.events.bad == ten_snap.events.bad == 47 * 36 + 1800


async def evaluate_with(url: str, at: datetime, retry: RetryPolicy) -> Any:
    async with PrometheusClient(url, retry=retry, timeout=1.0) as client:
        evaluator = Evaluator(lambda _url: client, default_datasource=url)
        return await evaluator.evaluate([slo("availability", AVAILABILITY)], at=at)


QUICK_RETRY = RetryPolicy(max_attempts=2, max_seconds=2.0, initial_backoff=0.1)


async def test_unreachable_prometheus_is_reported_within_bounded_time() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = datetime.now(UTC)
    result = await evaluate_with(url, END, QUICK_RETRY)
    assert (datetime.now(UTC) - started).total_seconds() < 10
    assert url in result.unavailable
    snap = result.snapshots[0]
    assert snap.status == "no_data"
    assert snap.reason.startswith("datasource unavailable")


@pytest.mark.parametrize("status", [500, 503], ids=["500", "503"])
async def test_prometheus_failing_transiently_is_unavailable_after_retries(
    fake_prometheus: Callable[..., FakePrometheus], status: int
) -> None:
    fake = fake_prometheus(*[Reply(status=status, body="overloaded")] * 4)
    result = await evaluate_with(fake.url, END, QUICK_RETRY)
    assert fake.url in result.unavailable
    assert len(fake.received) == 2  # both attempts, then it gave up


async def test_slow_prometheus_times_out_within_bounded_time(
    fake_prometheus: Callable[..., FakePrometheus],
) -> None:
    fake = fake_prometheus(*[Reply(delay=5.0)] * 4)
    started = datetime.now(UTC)
    result = await evaluate_with(fake.url, END, QUICK_RETRY)
    assert (datetime.now(UTC) - started).total_seconds() < 8
    assert fake.url in result.unavailable


async def test_query_rejected_with_422_is_the_slos_reason(
    fake_prometheus: Callable[..., FakePrometheus],
) -> None:
    rejection = {
        "status": "error",
        "errorType": "execution",
        "error": "query processing would load too many samples",
    }
    fake = fake_prometheus(*[Reply(status=422, body=rejection)] * 8)
    result = await evaluate_with(fake.url, END, QUICK_RETRY)
    assert result.unavailable == {}
    snap = result.snapshots[0]
    assert snap.status == "no_data"
    assert "too many samples" in (snap.reason or "")
