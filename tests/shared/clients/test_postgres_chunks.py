"""Count chunks: first reads, the one revisit, purge and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sla.clients.store import CountChunk, Store
from sla.clients.store.chunks import BULK_CHUNKS

HOUR = timedelta(hours=1)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def chunk(
    start: datetime,
    *,
    good: float = 90.0,
    total: float = 100.0,
    revisited: bool = False,
    indicator_key: str = "ratio-abc123",
) -> CountChunk:
    return CountChunk(
        indicator_key=indicator_key,
        datasource="http://prometheus:9090",
        chunk_start=start,
        chunk_seconds=3600,
        good=good,
        total=total,
        read_at=start + HOUR + timedelta(minutes=5 if not revisited else 60),
        revisited=revisited,
    )


async def read_day(
    store: Store, indicator_key: str = "ratio-abc123"
) -> list[CountChunk]:
    return await store.get_chunks(
        indicator_key, "http://prometheus:9090", 3600, start=T0, end=T0 + 24 * HOUR
    )


async def test_chunks_read_back_in_time_order_within_the_range(store: Store) -> None:
    await store.put_chunks([chunk(T0 + 2 * HOUR), chunk(T0), chunk(T0 + HOUR)])
    await store.put_chunks([chunk(T0 + 24 * HOUR)])  # the range's end is exclusive

    chunks = await read_day(store)

    assert [c.chunk_start for c in chunks] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert chunks[0] == chunk(T0)


async def test_slices_and_absence_are_kept(store: Store) -> None:
    sliced = CountChunk(
        indicator_key="latency-def456",
        datasource="http://prometheus:9090",
        chunk_start=T0,
        chunk_seconds=3600,
        good=0.0,
        total=0.0,
        read_at=T0 + HOUR,
        slice_good=(10.0, 0.0, 5.5),
        slice_total=(10.0, 0.0, 6.0),
        absent=True,
    )

    await store.put_chunks([sliced])

    assert await read_day(store, "latency-def456") == [sliced]


async def test_a_first_read_written_again_changes_nothing(store: Store) -> None:
    assert await store.put_chunks([chunk(T0, good=90)]) == 1

    assert await store.put_chunks([chunk(T0, good=80)]) == 0

    assert [c.good for c in await read_day(store)] == [90]


async def test_the_revisit_overwrites_once(store: Store) -> None:
    await store.put_chunks([chunk(T0, good=90, total=100)])

    assert await store.put_chunks([chunk(T0, good=95, total=104, revisited=True)]) == 1
    assert await store.put_chunks([chunk(T0, good=1, total=2, revisited=True)]) == 0
    assert await store.put_chunks([chunk(T0, good=1, total=2)]) == 0

    (stored,) = await read_day(store)
    assert (stored.good, stored.total, stored.revisited) == (95, 104, True)


async def test_a_batch_naming_a_chunk_twice_keeps_the_revisit(store: Store) -> None:
    batch = [chunk(T0, good=95, revisited=True), chunk(T0, good=90)]

    assert await store.put_chunks(batch) == 1

    assert [(c.good, c.revisited) for c in await read_day(store)] == [(95, True)]


async def test_purge_drops_the_named_histories_only(store: Store) -> None:
    await store.put_chunks(
        [chunk(T0 + n * HOUR, indicator_key="a") for n in range(3)]
        + [chunk(T0, indicator_key="b"), chunk(T0, indicator_key="c")]
    )

    assert await store.purge_chunks(["a", "b"]) == 4
    assert await read_day(store, "c") == [chunk(T0, indicator_key="c")]
    assert await store.purge_chunks() == 1
    assert await read_day(store, "c") == []


async def test_retention_drops_chunks_older_than_the_days_kept(store: Store) -> None:
    now = datetime(2026, 4, 10, tzinfo=UTC)
    await store.put_chunks(
        [chunk(now - timedelta(days=36)), chunk(now - timedelta(days=1))]
    )

    result = await store.apply_retention(retention_days=35, now=now)

    assert result.chunks == 1


async def test_a_bulk_write_leaves_the_table_vacuumed_and_analyzed(
    store: Store,
) -> None:
    # A new history of ten thousand chunks (ten SLOs over 1,000 hours): the next
    # tick reads them from the index alone, which needs all-visible pages.
    bulk = [
        chunk(T0 + hour * HOUR, indicator_key=f"ratio-{slo}")
        for slo in range(10)
        for hour in range(BULK_CHUNKS // 10)
    ]

    assert await store.put_chunks(bulk) == BULK_CHUNKS

    async with store._connection() as connection:
        pages, visible, tuples = await connection.fetchrow(
            "SELECT relpages, relallvisible, reltuples FROM pg_class "
            "WHERE oid = 'count_chunks'::regclass"
        )
    assert pages > 0 and visible == pages
    assert tuples == BULK_CHUNKS
    assert len(await read_day(store, "ratio-3")) == 24
