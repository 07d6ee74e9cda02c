"""Budget snapshots: idempotent batches, latest per SLO, history, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sla.clients.store import Store
from tests.support.snapshots import budget_snapshot

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


async def count_rows(store: Store) -> int:
    async with store.transaction() as tx, tx._connection() as connection:
        return int(await connection.fetchval("SELECT count(*) FROM budget_snapshots"))


async def test_the_same_snapshot_twice_is_stored_once(store: Store) -> None:
    snapshot = budget_snapshot("shop/checkout", T0)

    assert await store.put_snapshots([snapshot]) == 1
    assert await store.put_snapshots([snapshot]) == 0
    assert await store.put_snapshots([snapshot, snapshot]) == 0

    assert await count_rows(store) == 1


async def test_a_repeat_keeps_the_first_figures(store: Store) -> None:
    await store.put_snapshots([budget_snapshot("shop/checkout", T0, good=999)])

    await store.put_snapshots([budget_snapshot("shop/checkout", T0, good=990)])

    latest = await store.latest_snapshots(["shop/checkout"])
    assert latest["shop/checkout"].events.good == 999


async def test_a_batch_holding_one_snapshot_twice_stores_the_first(
    store: Store,
) -> None:
    first = budget_snapshot("shop/checkout", T0, good=999)
    second = budget_snapshot("shop/checkout", T0, good=990)
    other = budget_snapshot("shop/search", T0)

    assert await store.put_snapshots([first, other, second]) == 2

    latest = await store.latest_snapshots(["shop/checkout", "shop/search"])
    assert latest["shop/checkout"].events.good == 999
    assert await count_rows(store) == 2


async def test_an_instant_given_at_an_offset_is_read_back_in_utc(
    store: Store,
) -> None:
    plus_two = timezone(timedelta(hours=2))
    at_plus_two = datetime(2026, 3, 1, 14, 0, tzinfo=plus_two)
    await store.put_snapshots([budget_snapshot("shop/checkout", at_plus_two)])

    latest = (await store.latest_snapshots(["shop/checkout"]))["shop/checkout"]

    # 14:00 at +02:00 is 12:00 UTC.
    assert latest.evaluated_at == T0
    assert latest.evaluated_at.utcoffset() == timedelta(0)
    assert '"evaluated_at":"2026-03-01T12:00:00Z"' in latest.model_dump_json()


async def test_a_batch_of_ten_thousand_is_stored_in_one_call(store: Store) -> None:
    batch = [budget_snapshot(f"team/slo-{n}", T0) for n in range(10_000)]

    assert await store.put_snapshots(batch) == 10_000
    assert await store.put_snapshots(batch) == 0
    assert await count_rows(store) == 10_000


async def test_a_partly_stored_batch_stores_only_the_new_rows(store: Store) -> None:
    old = [budget_snapshot(f"team/slo-{n}", T0) for n in range(3)]
    new = [budget_snapshot(f"team/slo-{n}", T0 + MINUTE) for n in range(3)]
    await store.put_snapshots(old)

    assert await store.put_snapshots(old + new) == 3
    assert await count_rows(store) == 6


async def test_the_latest_snapshot_of_each_slo_is_its_newest(store: Store) -> None:
    await store.put_snapshots(
        [
            budget_snapshot("shop/checkout", T0, good=990),
            budget_snapshot("shop/checkout", T0 + 2 * MINUTE, good=999),
            budget_snapshot("shop/checkout", T0 + MINUTE, good=995),
            budget_snapshot("shop/search", T0, good=1000),
        ]
    )

    latest = await store.latest_snapshots(["shop/checkout", "shop/search", "none/x"])

    assert sorted(latest) == ["shop/checkout", "shop/search"]
    assert latest["shop/checkout"].evaluated_at == T0 + 2 * MINUTE
    assert latest["shop/checkout"].events.good == 999
    # good 999 of 1000 at 99 %: consumed (1/1000) / (1/100) = 0.1.
    assert abs(latest["shop/checkout"].error_budget.consumed - 0.1) < 1e-12  # type: ignore[operator]


async def test_history_is_one_slo_between_two_times_oldest_first(store: Store) -> None:
    await store.put_snapshots(
        [budget_snapshot("shop/checkout", T0 + n * MINUTE) for n in range(5)]
        + [budget_snapshot("shop/search", T0 + MINUTE)]
    )

    history = await store.history(
        "shop/checkout", start=T0 + MINUTE, end=T0 + 3 * MINUTE
    )

    assert [s.evaluated_at for s in history] == [
        T0 + MINUTE,
        T0 + 2 * MINUTE,
        T0 + 3 * MINUTE,
    ]
    limited = await store.history(
        "shop/checkout", start=T0, end=T0 + MINUTE * 9, limit=2
    )
    assert [s.evaluated_at for s in limited] == [T0, T0 + MINUTE]


async def test_retention_drops_snapshots_older_than_the_days_kept(store: Store) -> None:
    now = datetime(2026, 3, 31, tzinfo=UTC)
    await store.put_snapshots(
        [
            budget_snapshot("shop/checkout", now - timedelta(days=36)),
            budget_snapshot("shop/checkout", now - timedelta(days=35, minutes=1)),
            budget_snapshot("shop/checkout", now - timedelta(days=34)),
        ]
    )

    result = await store.apply_retention(retention_days=35, now=now)

    assert result.snapshots == 2
    remaining = await store.history(
        "shop/checkout", start=now - timedelta(days=99), end=now
    )
    assert [s.evaluated_at for s in remaining] == [now - timedelta(days=34)]
