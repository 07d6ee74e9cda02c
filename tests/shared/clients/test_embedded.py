"""The embedded PostgreSQL: started on demand, reused while running, stopped."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sla.clients.embedded import EmbeddedPostgres, default_data_dir, running_as_root
from sla.clients.store import Store
from tests.support.snapshots import budget_snapshot


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


def is_running(pid: int) -> bool:
    """Whether ``pid`` lives; a zombie waiting for init to reap it does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone_within(pid: int, seconds: float) -> bool:
    # pg_ctl -w stop returns once postmaster.pid is removed, an instant before the
    # process itself exits.
    deadline = time.monotonic() + seconds
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_the_embedded_server_serves_a_store_and_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "postgres"
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    try:
        pid = postmaster_pid(data_dir)
        # A second handle finds the server running and shares it.
        assert EmbeddedPostgres(data_dir).start() == url
        assert postmaster_pid(data_dir) == pid

        async with await Store.open(url, pool_size=2) as store:
            snapshot = budget_snapshot(
                "shop/checkout", datetime(2026, 3, 1, tzinfo=UTC)
            )
            assert await store.put_snapshots([snapshot]) == 1
            assert await store.latest_snapshots(["shop/checkout"]) == {
                "shop/checkout": snapshot
            }
    finally:
        server.stop()

    # Only a Unix socket in the data directory: no TCP address at all.
    assert url == f"postgresql://postgres:@/postgres?host={data_dir}"
    assert gone_within(pid, seconds=5)


def test_the_default_data_directory_is_the_state_directory() -> None:
    directory = default_data_dir()

    assert directory.name == "postgres"
    assert directory.parent.name == "sla"
    # A root process keeps it out of root's private home (see the module docstring).
    assert str(directory).startswith("/var/lib/") is running_as_root()
