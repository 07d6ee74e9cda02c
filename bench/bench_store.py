"""Benchmark of the store's budget-snapshot path.

Writes 100,000 snapshots in batches, then more rounds of 100,000 newer ones (a
server whose memory is full of pages not yet written to disk is slower than a
fresh one, and a running system is in that state), writes the first round's
batches again (every row a repeat, the path a redelivered evaluation takes), then
reads the latest snapshot of 10,000 SLOs at once, and prints rows per second for
each. The target is 100,000 snapshots written per second.

    .venv/bin/python bench/bench_store.py [--database-url URL] [--rounds N]

Without a URL the embedded PostgreSQL is started in a temporary directory and
stopped at the end. The tables live in a schema of their own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final

import asyncpg

from sla.clients.embedded import EmbeddedPostgres
from sla.clients.store import Store
from sla.clients.store.migrations import quote_identifier
from sla.model.snapshot import AlertState, BudgetSnapshot, ErrorBudget, EventCounts

SNAPSHOTS: Final = 100_000
SLOS: Final = 10_000
"""100,000 snapshots are 10 evaluation times of 10,000 SLOs."""

BATCH_SIZE: Final = 5_000
"""A tenth of the default shard size (500) times ten shards: what one tick of ten
sli-calculator instances writes at once."""

CONCURRENCY: Final = 4
"""Batches in flight, as several sli-calculator instances write at once."""

ROUNDS: Final = 5
"""Rounds of 100,000 new snapshots: 500,000 rows, about 150 MB of table and WAL,
more than the embedded server's 128 MB of shared buffers."""

TARGET_PER_SECOND: Final = 100_000

# The google preset's four rows at a 30-day window (DESIGN.md, burn-rate presets),
# and a burn rate for each of their windows and the SLO's own, so each snapshot is
# as large as one the evaluator writes.
BURN_WINDOWS: Final = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
ALERT_ROWS: Final = (
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
)


def make_snapshot(index: int, evaluated_at: datetime) -> BudgetSnapshot:
    bad = float(index % 50)
    total = 100_000.0
    consumed = (bad / total) / 0.001
    alerts = [
        AlertState(
            severity=severity,  # type: ignore[arg-type]
            long_window=long_window,
            short_window=short_window,
            factor=factor,
            firing=False,
            long_burn_rate=consumed,
            short_burn_rate=consumed,
        )
        for severity, long_window, short_window, factor in ALERT_ROWS
    ]
    return BudgetSnapshot(
        slo=f"team-{index % 100}/slo-{index}",
        evaluated_at=evaluated_at,
        objective=99.9,
        window="30d",
        status="healthy",
        sli=1 - bad / total,
        events=EventCounts(good=total - bad, bad=bad, total=total),
        error_budget=ErrorBudget(consumed=consumed, remaining=1 - consumed),
        burn_rates=dict.fromkeys(BURN_WINDOWS, consumed),
        alerts=alerts,
        exhaustion_eta=evaluated_at + timedelta(days=30 * (1 - consumed)),
        window_start=evaluated_at - timedelta(days=30),
    )


def make_batches(
    *, count: int, slos: int, size: int, first: int = 0
) -> list[list[BudgetSnapshot]]:
    """``count`` snapshots of ``slos`` SLOs, one evaluation a minute from minute
    ``first``, in batches of ``size``."""
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=first)
    snapshots = [
        make_snapshot(n % slos, start + timedelta(minutes=n // slos))
        for n in range(count)
    ]
    return [snapshots[i : i + size] for i in range(0, count, size)]


async def timed(
    label: str, rows: int, work: Callable[[], Awaitable[int]]
) -> tuple[int, float]:
    """What ``work`` returned, and the rows per second it took."""
    started = time.perf_counter()
    result = await work()
    elapsed = time.perf_counter() - started
    print(
        f"{label:<44} {rows:>8,} rows {elapsed:7.3f} s {rows / elapsed:>10,.0f} rows/s"
    )
    return result, rows / elapsed


async def write_all(
    store: Store, batches: Sequence[list[BudgetSnapshot]], *, concurrency: int
) -> int:
    gate = asyncio.Semaphore(concurrency)

    async def write(batch: list[BudgetSnapshot]) -> int:
        async with gate:
            return await store.put_snapshots(batch)

    return sum(await asyncio.gather(*(write(batch) for batch in batches)))


async def run(url: str, *, batch_size: int, concurrency: int, rounds: int) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    minutes = SNAPSHOTS // SLOS
    slos = sorted({make_snapshot(n, datetime.now(UTC)).slo for n in range(SLOS)})
    store = await Store.open(url, schema=schema, pool_size=concurrency)
    try:
        print(
            f"{SNAPSHOTS // batch_size} batches of {batch_size} a round, "
            f"{concurrency} in flight"
        )
        first_round = make_batches(count=SNAPSHOTS, slos=SLOS, size=batch_size)
        rates = []
        for round_ in range(rounds):
            batches = (
                first_round
                if round_ == 0
                else make_batches(
                    count=SNAPSHOTS, slos=SLOS, size=batch_size, first=round_ * minutes
                )
            )
            written, rate = await timed(
                f"write (new rows), round {round_ + 1}",
                SNAPSHOTS,
                partial(write_all, store, batches, concurrency=concurrency),
            )
            assert written == SNAPSHOTS
            rates.append(rate)
        slowest = min(rates)
        verdict = "met" if slowest >= TARGET_PER_SECOND else "MISSED"
        print(
            f"new rows: slowest round {slowest:,.0f} rows/s, "
            f"mean {len(rates) / sum(1 / r for r in rates):,.0f} rows/s "
            f"(target >= {TARGET_PER_SECOND:,}): {verdict}"
        )
        repeated, _ = await timed(
            "write again (all repeats, nothing stored)",
            SNAPSHOTS,
            partial(write_all, store, first_round, concurrency=concurrency),
        )
        latest, _ = await timed(
            f"read latest of {len(slos):,} SLOs",
            len(slos),
            lambda: _count(store.latest_snapshots(slos)),
        )
        assert (repeated, latest) == (0, len(slos))
    finally:
        await store.close()
        connection = await asyncpg.connect(url)
        await connection.execute(f"DROP SCHEMA {quote_identifier(schema)} CASCADE")
        await connection.close()


async def _count(latest: Awaitable[dict[str, BudgetSnapshot]]) -> int:
    return len(await latest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: embedded)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    arguments = parser.parse_args()
    options = {
        "batch_size": arguments.batch_size,
        "concurrency": arguments.concurrency,
        "rounds": arguments.rounds,
    }
    if arguments.database_url:
        asyncio.run(run(arguments.database_url, **options))
        return
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-") as directory,
        EmbeddedPostgres(Path(directory) / "postgres") as server,
    ):
        print(f"embedded PostgreSQL in {directory}")
        asyncio.run(run(server.url, **options))


if __name__ == "__main__":
    main()
