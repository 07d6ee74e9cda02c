"""Database failures become StoreUnavailable (retry) or StoreError (do not)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from sla.clients.store import CountChunk, Store, is_transient, to_store_error
from sla.errors import StoreError, StoreUnavailable
from tests.support.snapshots import budget_snapshot

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def test_a_refused_connection_is_unavailable(unused_tcp_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/test"

    with pytest.raises(StoreUnavailable) as raised:
        await Store.open(url, connect_timeout=2)

    assert isinstance(raised.value.__cause__, OSError)


async def terminate(database_url: str, backend: int) -> None:
    killer = await asyncpg.connect(database_url)
    try:
        await killer.execute("SELECT pg_terminate_backend($1)", backend)
    finally:
        await killer.close()


async def test_a_connection_killed_by_the_server_is_unavailable(
    store: Store, database_url: str, schema_name: str
) -> None:
    connection = await asyncpg.connect(
        database_url, server_settings={"search_path": schema_name}
    )
    bound = Store(None, connection=connection, schema=schema_name)
    await terminate(database_url, connection.get_server_pid())
    await asyncio.sleep(0.1)  # let the server's goodbye reach the socket

    with pytest.raises(StoreUnavailable) as raised:
        await bound.latest_snapshots(["shop/checkout"])

    await connection.close()
    assert isinstance(
        raised.value.__cause__,
        # Which one depends on whether asyncpg read the server's goodbye first.
        asyncpg.AdminShutdownError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.InterfaceError,
    )


async def test_the_pool_replaces_a_connection_the_server_closed(
    store: Store, database_url: str
) -> None:
    async with store._connection() as connection:
        backend = connection.get_server_pid()
    await terminate(database_url, backend)
    await asyncio.sleep(0.1)

    # The pool notices the dead connection on first use at the latest; a retry,
    # as the broker would make, gets a new one.
    try:
        await store.ping()
    except StoreUnavailable:
        await store.ping()


async def test_a_violated_constraint_is_a_lasting_error(store: Store) -> None:
    negative = CountChunk("k", "prom", T0, 3600, good=0.0, total=-10.0, read_at=T0)

    with pytest.raises(StoreError) as raised:
        await store.put_chunks([negative])

    assert type(raised.value) is StoreError
    assert isinstance(raised.value.__cause__, asyncpg.CheckViolationError)


async def test_a_failed_batch_stores_none_of_its_rows(store: Store) -> None:
    good = CountChunk("k", "prom", T0, 3600, good=1.0, total=10.0, read_at=T0)
    bad = CountChunk("k", "prom", T0.replace(hour=1), 3600, 0.0, -10.0, read_at=T0)

    with pytest.raises(StoreError):
        await store.put_chunks([good, bad])

    assert (
        await store.get_chunks("k", "prom", 3600, start=T0, end=T0.replace(hour=2))
        == []
    )


async def test_a_snapshot_stored_by_another_writer_meanwhile_is_skipped(
    store: Store, database_url: str, schema_name: str
) -> None:
    """Another writer stores a snapshot after the lookup of stored keys and before
    the copy: the unique key stops the copy and the batch goes the slow way."""
    first = budget_snapshot("shop/checkout", T0)
    second = budget_snapshot("shop/search", T0)
    other = await asyncpg.connect(
        database_url, server_settings={"search_path": schema_name}
    )
    other_writer = Store(None, connection=other, schema=schema_name)
    try:
        transaction = other.transaction()
        await transaction.start()
        await other_writer.put_snapshots([first])  # not committed: invisible to us

        ours = asyncio.create_task(store.put_snapshots([first, second]))
        await asyncio.sleep(0.3)  # our copy now waits on the other's unique key
        await transaction.commit()

        assert await ours == 1
    finally:
        await other.close()
    assert sorted(await store.latest_snapshots(["shop/checkout", "shop/search"])) == [
        "shop/checkout",
        "shop/search",
    ]


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        pytest.param(asyncpg.SerializationError("x"), True, id="serialization"),
        pytest.param(asyncpg.DeadlockDetectedError("x"), True, id="deadlock"),
        pytest.param(asyncpg.TooManyConnectionsError("x"), True, id="too-many"),
        pytest.param(asyncpg.AdminShutdownError("x"), True, id="admin-shutdown"),
        pytest.param(asyncpg.CannotConnectNowError("x"), True, id="starting-up"),
        pytest.param(asyncpg.QueryCanceledError("x"), True, id="statement-timeout"),
        pytest.param(ConnectionRefusedError(111, "refused"), True, id="refused"),
        pytest.param(TimeoutError(), True, id="command-timeout"),
        pytest.param(asyncpg.InterfaceError("connection is closed"), True, id="closed"),
        pytest.param(asyncpg.UniqueViolationError("x"), False, id="unique"),
        pytest.param(asyncpg.UndefinedTableError("x"), False, id="undefined-table"),
        pytest.param(asyncpg.InvalidPasswordError("x"), False, id="password"),
        pytest.param(asyncpg.InterfaceError("bad argument"), False, id="misuse"),
    ],
)
def test_errors_are_sorted_into_transient_and_lasting(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient
    assert isinstance(to_store_error(error), StoreUnavailable) is transient
