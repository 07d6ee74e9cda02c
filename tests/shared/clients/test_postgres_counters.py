"""Work counters in PostgreSQL: increments add up, labels stay in the vocabulary."""

from __future__ import annotations

import pytest

from sla.clients.store import CounterError, Increment, Store

SERIES = {"type": "dev.sla.freeze.applied", "outcome": "ok"}


async def test_counters_add_across_writers_and_refuse_free_labels(
    store: Store,
) -> None:
    """Two writes of 1 + 2 and one of 4 to the same series: 7."""
    await store.add_to_counters(
        [
            Increment("sla_events_published_total", 1, SERIES),
            Increment("sla_events_published_total", 2, dict(reversed(SERIES.items()))),
        ]
    )
    async with store.transaction() as tx:
        await tx.add_to_counters([Increment("sla_events_published_total", 4, SERIES)])

    (row,) = await store.read_counters()

    assert (row.metric, dict(row.labels), row.value) == (
        "sla_events_published_total",
        SERIES,
        7,
    )
    with pytest.raises(CounterError, match="labels"):
        Increment("sla_events_published_total", 1, {"event_id": "e-1"})
    with pytest.raises(CounterError, match="only grows"):
        Increment("sla_calculations_total", -1, {"outcome": "ok"})


async def test_a_zero_increment_adds_no_row(store: Store) -> None:
    await store.add_to_counters([Increment("sla_calculations_total", 0, {})])

    assert await store.read_counters() == []
