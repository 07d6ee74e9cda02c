"""The snapshot row layout: a shape stored once, figures packed, read back exactly.

Every figure a snapshot holds must come back as it went in, through each of the
three reads (latest, history, the snapshot before), and rows written in the JSON
layout before must still be read.
"""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla.clients.store import Store, bundled_migrations, migrate
from sla.errors import StoreError
from sla.model.snapshot import (
    STATUSES,
    AlertState,
    BudgetSnapshot,
    ErrorBudget,
    EventCounts,
)
from tests.support.schemas import drop_schema
from tests.support.snapshots import budget_snapshot

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def detailed_snapshot(slo: str, evaluated_at: datetime) -> BudgetSnapshot:
    """Every optional part set, a missing burn rate and one alert firing."""
    return BudgetSnapshot(
        slo=slo,
        evaluated_at=evaluated_at,
        objective=99.95,
        window="28d",
        status="critical",
        sli=0.9991,
        events=EventCounts(good=99_910.0, bad=90.0, total=100_000.0),
        error_budget=ErrorBudget(consumed=1.8, remaining=-0.8),
        burn_rates={"5m": None, "1h": 15.5, "28d": 1.8},
        alerts=[
            AlertState(
                severity="page",
                long_window="1h",
                short_window="5m",
                factor=14.4,
                firing=True,
                long_burn_rate=15.5,
                short_burn_rate=None,
            ),
            AlertState(
                severity="ticket",
                long_window="3d",
                short_window="6h",
                factor=1.0,
                firing=False,
            ),
        ],
        exhaustion_eta=evaluated_at + timedelta(hours=3, microseconds=7),
        window_start=evaluated_at - timedelta(days=28),
        reason="budget spent",
        notes=["short window rounded up to the scrape interval", "ünïcode"],
    )


async def read_back_three_ways(
    store: Store, snapshot: BudgetSnapshot
) -> list[BudgetSnapshot | None]:
    latest = await store.latest_snapshots([snapshot.slo])
    history = await store.history(
        snapshot.slo, start=snapshot.evaluated_at, end=snapshot.evaluated_at
    )
    previous = await store.previous_snapshot(
        snapshot.slo, snapshot.evaluated_at + MINUTE
    )
    return [latest.get(snapshot.slo), *history, previous]


async def fetch(store: Store, query: str, *args: Any) -> list[Any]:
    async with store.transaction() as tx, tx._connection() as connection:
        return list(await connection.fetch(query, *args))


async def execute(store: Store, query: str, *args: Any) -> None:
    async with store.transaction() as tx, tx._connection() as connection:
        await connection.execute(query, *args)


async def test_every_part_of_a_snapshot_is_read_back_as_written(store: Store) -> None:
    snapshot = detailed_snapshot("shop/checkout", T0)

    await store.put_snapshots([snapshot])

    assert await read_back_three_ways(store, snapshot) == [snapshot] * 3


async def test_a_row_packs_only_the_measured_figures(store: Store) -> None:
    snapshot = detailed_snapshot("shop/checkout", T0)
    await store.put_snapshots([snapshot])

    [row] = await fetch(store, "SELECT figures, snapshot FROM budget_snapshots")

    # good, bad, total; 3 burn rates; 2 alert rows of (long, short, firing).
    figures = 3 + 3 + 2 * 3
    assert len(row["figures"]) == 8 * figures
    assert struct.unpack(">3d", row["figures"][:24]) == (99_910.0, 90.0, 100_000.0)
    assert row["snapshot"] is None


async def test_slos_of_one_shape_share_one_stored_shape(store: Store) -> None:
    same = [budget_snapshot(f"team/slo-{n}", T0) for n in range(50)]
    other = budget_snapshot("team/strict", T0, objective=99.9)

    await store.put_snapshots([*same, other])
    await store.put_snapshots([budget_snapshot("team/slo-0", T0 + MINUTE)])

    shapes = await fetch(store, "SELECT definition FROM snapshot_shapes")
    assert len(shapes) == 2
    assert sorted('"objective":99.9,' in r["definition"] for r in shapes) == [
        False,
        True,
    ]
    latest = await store.latest_snapshots(["team/slo-7", "team/strict"])
    assert latest["team/slo-7"].objective == 99.0
    assert latest["team/strict"].objective == 99.9


async def test_concurrent_batches_storing_the_same_new_shapes_all_land(
    store: Store,
) -> None:
    objectives = [99.0, 99.5, 99.9, 99.95]

    def batch(writer: int) -> list[BudgetSnapshot]:
        # Each writer names the four shapes in another order.
        order = objectives[writer:] + objectives[:writer]
        return [
            budget_snapshot(f"w{writer}/slo-{n}", T0, objective=objective)
            for n, objective in enumerate(order)
        ]

    stored = await asyncio.gather(*(store.put_snapshots(batch(w)) for w in range(4)))

    assert stored == [4, 4, 4, 4]
    [count] = await fetch(store, "SELECT count(*) FROM snapshot_shapes")
    assert count[0] == len(objectives)


async def test_rows_written_before_the_layout_changed_are_still_read(
    database_url: str, schema_name: str
) -> None:
    snapshot = detailed_snapshot("shop/legacy", T0)
    # A store as migrations 1 to 5 left it, holding a row in the JSON layout.
    connection = await asyncpg.connect(
        database_url, server_settings={"search_path": schema_name}
    )
    try:
        before = [m for m in bundled_migrations() if m.version <= 5]
        assert await migrate(connection, schema=schema_name, migrations=before)
        await connection.execute(
            "INSERT INTO budget_snapshots (slo, evaluated_at, status, remaining,"
            " consumed, sli, snapshot) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            snapshot.slo,
            snapshot.evaluated_at,
            snapshot.status,
            snapshot.error_budget.remaining,
            snapshot.error_budget.consumed,
            snapshot.sli,
            snapshot.model_dump_json(),
        )
    finally:
        await connection.close()

    store = await Store.open(database_url, schema=schema_name)
    try:
        newer = detailed_snapshot("shop/legacy", T0 + MINUTE)
        await store.put_snapshots([newer])

        assert await read_back_three_ways(store, snapshot) == [
            newer,
            snapshot,
            snapshot,
        ]
        assert await read_back_three_ways(store, newer) == [newer] * 3
    finally:
        await store.close()
        await drop_schema(database_url, schema_name)


async def test_a_row_in_neither_layout_is_refused_by_the_table(store: Store) -> None:
    with pytest.raises(StoreError, match="budget_snapshots_one_layout"):
        await execute(
            store,
            "INSERT INTO budget_snapshots (slo, evaluated_at, status)"
            " VALUES ('shop/none', $1, 'healthy')",
            T0,
        )


async def test_figures_that_do_not_fit_their_shape_are_an_error_naming_the_row(
    store: Store,
) -> None:
    await store.put_snapshots([detailed_snapshot("shop/checkout", T0)])
    await execute(
        store, "UPDATE budget_snapshots SET figures = substring(figures from 9)"
    )

    with pytest.raises(StoreError) as raised:
        await store.latest_snapshots(["shop/checkout"])

    message = str(raised.value)
    assert "shop/checkout" in message and "2026-03-01T12:00:00+00:00" in message
    # 12 float64s less the 8 bytes cut off.
    assert "88 bytes" in message and "12 float64s (96 bytes)" in message


async def test_a_row_whose_shape_is_gone_is_an_error_naming_the_row(
    store: Store,
) -> None:
    await store.put_snapshots([detailed_snapshot("shop/checkout", T0)])
    await execute(store, "DELETE FROM snapshot_shapes")

    with pytest.raises(StoreError, match=r"shop/checkout .* shape that is not stored"):
        await store.history("shop/checkout", start=T0, end=T0)


async def test_a_nul_in_a_reason_or_note_is_stored_as_a_replacement_character(
    store: Store,
) -> None:
    snapshot = detailed_snapshot("shop/checkout", T0).model_copy(
        update={"reason": "proxy said \x00 then stopped", "notes": ["a\x00b"]}
    )

    assert await store.put_snapshots([snapshot]) == 1

    [read] = await store.history("shop/checkout", start=T0, end=T0)
    assert read.reason == "proxy said \ufffd then stopped"
    assert read.notes == ["a\ufffdb"]


figures = st.floats(allow_nan=False, width=64)
optional_figures = st.none() | figures
windows = st.sampled_from(["5m", "30m", "1h", "2h", "6h", "1d", "3d", "28d", "30d"])
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC),
)
alert_states = st.builds(
    AlertState,
    severity=st.sampled_from(["page", "ticket"]),
    long_window=windows,
    short_window=windows,
    factor=figures,
    firing=st.booleans(),
    long_burn_rate=optional_figures,
    short_burn_rate=optional_figures,
)
snapshots = st.builds(
    BudgetSnapshot,
    slo=st.just("prop/slo"),
    evaluated_at=instants,
    objective=figures,
    window=windows,
    budgeting_method=st.sampled_from(["Occurrences", "Timeslices"]),
    status=st.sampled_from(STATUSES),
    sli=optional_figures,
    events=st.builds(EventCounts, good=figures, bad=figures, total=figures),
    error_budget=st.builds(
        ErrorBudget, consumed=optional_figures, remaining=optional_figures
    ),
    burn_rates=st.dictionaries(windows, optional_figures, max_size=5),
    alerts=st.lists(alert_states, max_size=5),
    exhaustion_eta=st.none() | instants,
    window_start=st.none() | instants,
    reason=st.none() | st.text(max_size=30).filter(lambda text: "\x00" not in text),
    notes=st.lists(st.text(max_size=20).filter(lambda text: "\x00" not in text)),
)


@settings(
    max_examples=60,
    deadline=None,
    # One schema serves every example; each example clears the table first.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(snapshot=snapshots)
async def test_any_snapshot_is_read_back_exactly(
    store: Store, snapshot: BudgetSnapshot
) -> None:
    await execute(store, "DELETE FROM budget_snapshots")

    assert await store.put_snapshots([snapshot]) == 1

    assert await read_back_three_ways(store, snapshot) == [snapshot] * 3
