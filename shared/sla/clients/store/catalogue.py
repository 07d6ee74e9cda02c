"""The SLO and policy catalogue, kept in step with the cluster by slo-catalog."""

from __future__ import annotations

from typing import Any

from sla.clients.store.base import StoreBase, affected_rows, from_json, to_json
from sla.clients.store.records import CatalogueEntry, CatalogueKind

# Relisting every 15 minutes writes every object again; a write that changes
# nothing is skipped. The generation alone does not say "unchanged": Kubernetes
# leaves it alone when only labels change, and labels select SLOs for policies.
_UPSERT = """
INSERT INTO catalogue AS stored
    (kind, namespace, name, source, generation, labels, document, validation_error)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8)
ON CONFLICT (kind, namespace, name) DO UPDATE SET
    source = EXCLUDED.source,
    generation = EXCLUDED.generation,
    labels = EXCLUDED.labels,
    document = EXCLUDED.document,
    validation_error = EXCLUDED.validation_error,
    updated_at = now()
WHERE (stored.generation, stored.source, stored.labels, stored.validation_error)
    IS DISTINCT FROM
    (EXCLUDED.generation, EXCLUDED.source, EXCLUDED.labels, EXCLUDED.validation_error)
"""

_LIST = """
SELECT * FROM catalogue
WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR namespace = $2)
ORDER BY kind, namespace, name
"""


def _entry(record: Any) -> CatalogueEntry:
    return CatalogueEntry(
        kind=record["kind"],
        namespace=record["namespace"],
        name=record["name"],
        source=record["source"],
        generation=record["generation"],
        document=from_json(record["document"]),
        labels=from_json(record["labels"]),
        validation_error=record["validation_error"],
        updated_at=record["updated_at"],
    )


class CatalogueQueries(StoreBase):
    async def upsert_catalogue(self, entry: CatalogueEntry) -> bool:
        """Store an object as seen; return whether anything changed."""
        async with self._connection() as connection:
            status = await connection.execute(
                _UPSERT,
                entry.kind,
                entry.namespace,
                entry.name,
                entry.source,
                entry.generation,
                to_json(entry.labels),
                to_json(entry.document),
                entry.validation_error,
            )
        return affected_rows(status) == 1

    async def delete_catalogue(
        self, kind: CatalogueKind, namespace: str, name: str
    ) -> bool:
        """Forget an object; return whether it was there."""
        async with self._connection() as connection:
            status = await connection.execute(
                "DELETE FROM catalogue"
                " WHERE kind = $1 AND namespace = $2 AND name = $3",
                kind,
                namespace,
                name,
            )
        return affected_rows(status) == 1

    async def list_catalogue(
        self, *, kind: CatalogueKind | None = None, namespace: str | None = None
    ) -> list[CatalogueEntry]:
        """Objects of one kind and namespace, or all, ordered by kind and key."""
        async with self._connection() as connection:
            records = await connection.fetch(_LIST, kind, namespace)
        return [_entry(record) for record in records]
