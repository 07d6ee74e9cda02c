"""The SLO and policy catalogue: cluster objects in, store rows out, budgets back.

- :func:`entry_from_object` turns an SLODefinition or SLAPolicy as the API has it
  into a catalogue row, validated by the same models ``sla validate`` uses; an
  invalid object is kept with its validation error, so it is reported, not retried.
- :func:`plan_relist` compares the catalogue with a full list from the cluster and
  says what to add, change and remove. Only rows that came from the cluster
  (``source`` ``kubernetes``) are removed; rows written by ``sla apply`` are not
  the cluster's to delete.
- :func:`status_patch` decides what to write into an SLODefinition's status for a
  budget snapshot, if anything: never an older snapshot than the one shown, and for
  an unchanged status at most once per ``SLA_STATUS_WRITE_MIN_SECONDS``.
- :func:`load_slos` reads the valid SLOs back for evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from sla.clients.store import CatalogueEntry, Store
from sla.clients.store.records import CatalogueKind
from sla.model.base import UtcDatetime, error_message
from sla.model.policy import SLAPolicy
from sla.model.slo import SLODefinition
from sla.model.snapshot import BudgetSnapshot

CLUSTER_SOURCE: Final = "kubernetes"
"""``source`` of rows kept in step with the cluster."""

MODELS: Final[Mapping[str, type[SLODefinition] | type[SLAPolicy]]] = {
    "SLODefinition": SLODefinition,
    "SLAPolicy": SLAPolicy,
}

# Only what defines the object is kept: managedFields, uid and status are the API
# server's bookkeeping and change without the object changing.
_KEPT_METADATA: Final = ("name", "namespace", "labels", "annotations", "generation")


@dataclass(frozen=True)
class RelistPlan:
    """What a relist corrects: rows to write, and rows to drop (kind, ns, name)."""

    upserts: list[CatalogueEntry] = field(default_factory=list)
    deletes: list[tuple[CatalogueKind, str, str]] = field(default_factory=list)

    def describe(self) -> list[str]:
        added = [f"{e.kind} {e.key}" for e in self.upserts]
        removed = [f"{kind} {ns}/{name}" for kind, ns, name in self.deletes]
        return [f"write {item}" for item in added] + [
            f"remove {item}" for item in removed
        ]


def entry_from_object(obj: Mapping[str, Any], *, source: str) -> CatalogueEntry:
    """A catalogue row for an object of the API; invalid ones carry their error."""
    kind = str(obj.get("kind", ""))
    if kind not in MODELS:
        raise ValueError(f"{kind!r} is not SLODefinition or SLAPolicy")
    metadata = obj.get("metadata") or {}
    document = _document(obj)
    return CatalogueEntry(
        kind=kind,  # type: ignore[arg-type]
        namespace=str(metadata.get("namespace") or "default"),
        name=str(metadata["name"]),
        source=source,
        generation=int(metadata.get("generation") or 1),
        document=document,
        labels=dict(metadata.get("labels") or {}),
        validation_error=validation_error(kind, document),
    )


def validation_error(kind: str, document: Mapping[str, Any]) -> str | None:
    """Why the model refuses the document, one line per problem; None if valid."""
    try:
        MODELS[kind].model_validate(document)
    except ValidationError as error:
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or kind}: {error_message(e)}"
            for e in error.errors(include_input=False, include_url=False)
        )
    return None


def entry_from_model(
    obj: SLODefinition | SLAPolicy, *, source: str, generation: int
) -> CatalogueEntry:
    """A row for an object read from a file (``sla apply``)."""
    document = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    return CatalogueEntry(
        kind=obj.kind,
        namespace=obj.metadata.namespace,
        name=obj.metadata.name,
        source=source,
        generation=generation,
        document=document,
        labels=dict(obj.metadata.labels),
    )


def plan_relist(
    stored: Sequence[CatalogueEntry], listed: Sequence[CatalogueEntry]
) -> RelistPlan:
    """Rows to write so the catalogue matches the cluster, and rows to drop."""
    have = {(e.kind, e.namespace, e.name): e for e in stored}
    seen = {(e.kind, e.namespace, e.name) for e in listed}
    upserts = [entry for entry in listed if _differs(have.get(_id(entry)), entry)]
    deletes = [
        key
        for key, entry in sorted(have.items())
        if key not in seen and entry.source == CLUSTER_SOURCE
    ]
    return RelistPlan(upserts=upserts, deletes=deletes)


async def apply_plan(store: Store, plan: RelistPlan) -> None:
    """Write a relist's corrections in one transaction."""
    async with store.transaction() as tx:
        for entry in plan.upserts:
            await tx.upsert_catalogue(entry)
        for kind, namespace, name in plan.deletes:
            await tx.delete_catalogue(kind, namespace, name)


async def load_slos(
    store: Store, *, keys: Iterable[str] | None = None
) -> dict[str, SLODefinition]:
    """Valid SLOs of the catalogue by key (only ``keys`` if given)."""
    wanted = None if keys is None else set(keys)
    entries = await store.list_catalogue(kind="SLODefinition")
    slos: dict[str, SLODefinition] = {}
    for entry in entries:
        if entry.validation_error is not None:
            continue
        if wanted is not None and entry.key not in wanted:
            continue
        slos[entry.key] = SLODefinition.model_validate(entry.document)
    return slos


async def stored_entry(
    store: Store, kind: CatalogueKind, namespace: str, name: str
) -> CatalogueEntry | None:
    entries = await store.list_catalogue(kind=kind, namespace=namespace)
    return next((entry for entry in entries if entry.name == name), None)


class _ShownStatus(BaseModel):
    """The part of an SLODefinition's status that a write-back compares with."""

    lastEvaluated: UtcDatetime | None = None  # the CRD's field name
    status: str | None = None


def status_patch(
    snapshot: BudgetSnapshot,
    *,
    current: Mapping[str, Any] | None,
    generation: int | None,
    min_interval: timedelta,
) -> tuple[dict[str, Any] | None, str]:
    """The merge patch for the status subresource (None: leave it), and why.

    Nothing is written when the status shows this snapshot or a newer one (events
    arrive in any order), or when the status is unchanged and the last write is
    younger than ``min_interval``.
    """
    shown = _shown(current)
    last = shown.lastEvaluated
    if last is not None and last >= snapshot.evaluated_at:
        return None, "the status shows these or newer figures"
    same_status = shown.status == snapshot.status
    if same_status and last is not None and snapshot.evaluated_at - last < min_interval:
        seconds = int(min_interval.total_seconds())
        return None, f"status still {snapshot.status}, written under {seconds} s ago"
    patch = _patch_body(snapshot, current=current, generation=generation)
    return patch, f"status written: {snapshot.status}"


def _patch_body(
    snapshot: BudgetSnapshot,
    *,
    current: Mapping[str, Any] | None,
    generation: int | None,
) -> dict[str, Any]:
    remaining = snapshot.error_budget.remaining
    burn_rates: dict[str, float | None] = {
        window: rate for window, rate in snapshot.burn_rates.items() if rate is not None
    }
    # A merge patch merges maps: windows no longer reported must be nulled out.
    old = (current or {}).get("burnRates") or {}
    burn_rates.update({window: None for window in old if window not in burn_rates})
    patch: dict[str, Any] = {
        "status": snapshot.status,
        # Percent, as the CRD's printer column says; null removes it on no_data.
        "budgetRemaining": None if remaining is None else remaining * 100,
        "burnRates": burn_rates,
        "lastEvaluated": snapshot.evaluated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if generation is not None:
        patch["observedGeneration"] = generation
    return patch


def _shown(current: Mapping[str, Any] | None) -> _ShownStatus:
    try:
        return _ShownStatus.model_validate(
            {k: (current or {}).get(k) for k in ("lastEvaluated", "status")}
        )
    except ValidationError:
        # A status someone else wrote badly is replaced, not trusted.
        return _ShownStatus()


def _document(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    kept = {key: metadata[key] for key in _KEPT_METADATA if metadata.get(key)}
    # Annotations kubectl writes hold the whole last-applied object.
    annotations = {
        key: value
        for key, value in (kept.get("annotations") or {}).items()
        if not key.startswith("kubectl.kubernetes.io/")
    }
    if annotations:
        kept["annotations"] = annotations
    else:
        kept.pop("annotations", None)
    document: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": kept,
    }
    if "spec" in obj:
        document["spec"] = obj["spec"]
    return document


def _id(entry: CatalogueEntry) -> tuple[CatalogueKind, str, str]:
    return (entry.kind, entry.namespace, entry.name)


def _differs(stored: CatalogueEntry | None, listed: CatalogueEntry) -> bool:
    if stored is None:
        return True
    return (
        stored.generation,
        stored.source,
        stored.labels,
        stored.validation_error,
    ) != (listed.generation, listed.source, listed.labels, listed.validation_error)


FILE_SOURCE: Final = "file"
"""``source`` of rows written by ``sla apply``; a relist leaves them alone."""


async def apply_objects(
    store: Store, objects: Sequence[SLODefinition | SLAPolicy]
) -> tuple[int, int]:
    """Write objects read from files; return (written, unchanged).

    Files have no generation, so one is kept as Kubernetes keeps it: 1 for a new
    object, one more than the stored one when the document changed.
    """
    written = unchanged = 0
    async with store.transaction() as tx:
        for obj in objects:
            namespace, name = obj.metadata.namespace, obj.metadata.name
            stored = await stored_entry(tx, obj.kind, namespace, name)
            entry = entry_from_model(obj, source=FILE_SOURCE, generation=1)
            if stored is not None and stored.document == entry.document:
                unchanged += 1
                continue
            generation = 1 if stored is None else stored.generation + 1
            await tx.upsert_catalogue(replace(entry, generation=generation))
            written += 1
    return written, unchanged
