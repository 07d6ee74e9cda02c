"""PostgreSQL storage: the :class:`Store`, its records and its migrations."""

from sla.clients.store.counters import CounterError, CounterValue, Increment
from sla.clients.store.failures import is_transient, to_store_error
from sla.clients.store.migrations import Migration, bundled_migrations, migrate
from sla.clients.store.records import (
    AuditEntry,
    CatalogueEntry,
    Claim,
    CountChunk,
    FreezeEvent,
    FreezeState,
    FrozenObject,
    ManualOverride,
    ObjectRef,
    ProcessedEvent,
    RetentionResult,
)
from sla.clients.store.store import Store

__all__ = [
    "AuditEntry",
    "CatalogueEntry",
    "Claim",
    "CountChunk",
    "CounterError",
    "CounterValue",
    "FreezeEvent",
    "FreezeState",
    "FrozenObject",
    "Increment",
    "ManualOverride",
    "Migration",
    "ObjectRef",
    "ProcessedEvent",
    "RetentionResult",
    "Store",
    "bundled_migrations",
    "is_transient",
    "migrate",
    "to_store_error",
]
