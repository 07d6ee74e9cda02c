"""Mapping asyncpg and socket errors to the library's store errors.

Transient failures, which a retry by the broker can fix, become
:class:`~sla.errors.StoreUnavailable`; everything else from the database becomes
:class:`~sla.errors.StoreError`. Both are raised ``from`` the original.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import asyncpg

from sla.errors import SLAError, StoreError, StoreUnavailable

TRANSIENT_SQLSTATE_CLASSES: Final = ("08", "53")
"""SQLSTATE classes (PostgreSQL docs, appendix A): 08 connection exception, 53
insufficient resources (too many connections, disk full, out of memory)."""

TRANSIENT_SQLSTATES: Final = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "57014",  # query_canceled: statement_timeout or a cancel from outside
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: the server is starting or in recovery
        "58030",  # io_error
    }
)


def is_transient(error: BaseException) -> bool:
    """Whether a retry of the same work may succeed."""
    if isinstance(error, asyncpg.PostgresError):
        state = str(getattr(error, "sqlstate", "") or "")
        return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_SQLSTATE_CLASSES
    if isinstance(error, asyncpg.InterfaceError):
        # asyncpg has no class of its own for "connection is closed" or "pool is
        # closing"; both mean the server went away under us.
        return "closed" in str(error) or "closing" in str(error)
    # Refused, reset, unreachable; and command_timeout, whose asyncio.TimeoutError
    # is the built-in TimeoutError, an OSError, since Python 3.11.
    return isinstance(error, OSError)


def to_store_error(error: BaseException) -> StoreError:
    """The library error for a database or socket failure."""
    kind = StoreUnavailable if is_transient(error) else StoreError
    detail = str(error) or type(error).__name__
    return kind(f"PostgreSQL: {detail}")


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Let library errors through; map asyncpg and socket errors at the boundary."""
    try:
        yield
    except SLAError:
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise to_store_error(exc) from exc
