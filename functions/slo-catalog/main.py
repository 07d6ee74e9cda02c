"""slo-catalog: the catalogue in PostgreSQL in step with the cluster, and budgets back.

Takes:

- ApiServerSource events (``Resource`` mode: the data is the object) for
  SLODefinitions and SLAPolicies: add and update write the catalogue row with the
  object's generation (a write that changes nothing is skipped; an event older than
  the stored generation is ignored); delete removes it. An object the models refuse
  is stored with its validation error, reported in its ``Valid`` condition, and
  answered 2xx: retrying cannot make it valid.
- the ``sla-relist`` ping: list both kinds from the API and correct the catalogue
  (add missing rows, update changed ones, drop rows of deleted objects).
- ``dev.sla.budget.calculated``: write the snapshot's figures into the
  SLODefinition's status subresource, never older figures over newer ones, and for
  an unchanged status at most once per ``SLA_STATUS_WRITE_MIN_SECONDS``. These
  events skip the processed-event record: the status itself says what was written,
  so a repeat changes nothing, and a thousand SLOs a minute need no extra writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sla.clients.kube import SLA_POLICY, SLO_DEFINITION, KubeClient, ResourceKind
from sla.errors import KubeConflict, KubeNotFound
from sla.model.events import (
    BUDGET_CALCULATED,
    PING,
    RESOURCE_ADD,
    RESOURCE_DELETE,
    RESOURCE_UPDATE,
    ApiServerResource,
    PingData,
)
from sla.model.snapshot import BudgetSnapshot
from sla.runtime.binding import EventRejected
from sla.runtime.function import (
    Accept,
    Delivery,
    Function,
    Outcome,
    from_function,
    ping_source,
)
from sla.services.catalogue import (
    CLUSTER_SOURCE,
    apply_plan,
    entry_from_object,
    plan_relist,
    status_patch,
    stored_entry,
)

NAME = "slo-catalog"

KINDS: Final[Mapping[str, ResourceKind]] = {
    "SLODefinition": SLO_DEFINITION,
    "SLAPolicy": SLA_POLICY,
}

PATCH_ATTEMPTS: Final = 3
"""Re-reads after a resourceVersion conflict before the broker's retry takes over."""

VALID: Final = "Valid"
"""The condition type slo-catalog owns in both kinds' status."""

LOGGED_CORRECTIONS: Final = 20

NO_CLUSTER: Final = "no cluster configured (sla dev without --kubeconfig): skipped"
"""The catalogue then comes from files (``sla apply``, ``sla dev --slos``) alone."""


async def on_resource(delivery: Delivery[ApiServerResource]) -> Outcome:
    obj = _object(delivery.data)
    entry = entry_from_object(obj, source=CLUSTER_SOURCE)
    store = await delivery.deps.store()
    stored = await stored_entry(store, entry.kind, entry.namespace, entry.name)
    if stored is not None and stored.generation > entry.generation:
        return Outcome(
            slos=[entry.key],
            detail=f"stale: generation {entry.generation} < {stored.generation}",
        )
    verdict = "invalid" if entry.validation_error else "valid"

    async def report() -> None:
        await _report_validity(delivery, obj, entry.validation_error)

    return Outcome(
        write=lambda tx: tx.upsert_catalogue(entry),
        after=report,
        slos=[entry.key],
        detail=f"{entry.kind} generation {entry.generation}, {verdict}",
    )


async def on_delete(delivery: Delivery[ApiServerResource]) -> Outcome:
    obj = _object(delivery.data)
    entry = entry_from_object(obj, source=CLUSTER_SOURCE)
    return Outcome(
        write=lambda tx: tx.delete_catalogue(entry.kind, entry.namespace, entry.name),
        slos=[entry.key],
        detail=f"{entry.kind} deleted",
    )


async def on_relist(delivery: Delivery[PingData]) -> Outcome:
    kube = await delivery.deps.kube_if_configured()
    if kube is None:
        return Outcome(detail=NO_CLUSTER)
    listed = [
        entry_from_object(obj, source=CLUSTER_SOURCE)
        for kind in KINDS.values()
        for obj in await asyncio.to_thread(kube.list_objects, kind, None)
    ]
    store = await delivery.deps.store()
    plan = plan_relist(await store.list_catalogue(), listed)
    corrections = plan.describe()
    if not corrections:
        return Outcome(detail=f"{len(listed)} objects, catalogue in step")
    shown = "; ".join(corrections[:LOGGED_CORRECTIONS])
    more = len(corrections) - LOGGED_CORRECTIONS
    return Outcome(
        write=lambda tx: apply_plan(tx, plan),
        detail=f"corrected {len(corrections)}: {shown}"
        + (f"; and {more} more" if more > 0 else ""),
    )


async def on_budget(delivery: Delivery[BudgetSnapshot]) -> Outcome:
    snapshot = delivery.data
    namespace, _, name = snapshot.slo.partition("/")
    kube = await delivery.deps.kube_if_configured()
    if kube is None:
        return Outcome(slos=[snapshot.slo], detail=NO_CLUSTER)
    interval = timedelta(seconds=delivery.settings.status_write_min_seconds)
    for _ in range(PATCH_ATTEMPTS):
        try:
            detail = await _write_status(kube, namespace, name, snapshot, interval)
        except KubeNotFound:
            detail = "the SLODefinition no longer exists"
        except KubeConflict:
            continue
        return Outcome(slos=[snapshot.slo], detail=detail)
    raise KubeConflict(
        "the status kept changing under the write",
        status=409,
        verb="patch",
        kind="SLODefinition",
        name=name,
        namespace=namespace,
    )


async def _write_status(
    kube: KubeClient,
    namespace: str,
    name: str,
    snapshot: BudgetSnapshot,
    interval: timedelta,
) -> str:
    obj = await asyncio.to_thread(kube.get, SLO_DEFINITION, namespace, name)
    metadata = obj.get("metadata") or {}
    patch, reason = status_patch(
        snapshot,
        current=obj.get("status"),
        generation=metadata.get("generation"),
        min_interval=interval,
    )
    if patch is None:
        return reason
    await asyncio.to_thread(
        kube.patch_status,
        SLO_DEFINITION,
        namespace,
        name,
        patch,
        resource_version=metadata.get("resourceVersion"),
    )
    return reason


async def _report_validity(
    delivery: Delivery[Any], obj: Mapping[str, Any], error: str | None
) -> None:
    """Set the object's ``Valid`` condition when it does not already say this."""
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    mine = next((c for c in conditions if c.get("type") == VALID), None)
    wanted = "False" if error else "True"
    message = error or "the spec is valid"
    if mine and mine.get("status") == wanted and mine.get("message") == message:
        return
    condition = {
        "type": VALID,
        "status": wanted,
        "reason": "InvalidSpec" if error else "SpecValid",
        # The CRD caps a condition's message at 32 KiB.
        "message": message[:32768],
        "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "observedGeneration": int(metadata.get("generation") or 1),
    }
    others = [c for c in conditions if c.get("type") != VALID]
    kube = await delivery.deps.kube()
    # Conditions are a list, which a merge patch replaces whole: the others are
    # written back as read, and the resourceVersion makes a concurrent change a
    # conflict instead of a lost write (the next update event tries again).
    await asyncio.to_thread(
        kube.patch_status,
        KINDS[str(obj["kind"])],
        str(metadata.get("namespace") or "default"),
        str(metadata["name"]),
        {"conditions": [*others, condition]},
        resource_version=metadata.get("resourceVersion"),
    )


def _object(data: ApiServerResource) -> dict[str, Any]:
    if data.kind not in KINDS or not data.api_version.startswith("sla.dev/"):
        raise EventRejected(
            400,
            f"{data.api_version} {data.kind} is not a kind the catalogue keeps",
            field="data.kind",
        )
    return data.model_dump(mode="json", by_alias=True, exclude_none=True)


function = Function(
    NAME,
    accepts=[
        Accept(RESOURCE_ADD, on_resource),
        Accept(RESOURCE_UPDATE, on_resource),
        Accept(RESOURCE_DELETE, on_delete),
        Accept(PING, on_relist, sources=ping_source("sla-relist")),
        Accept(
            BUDGET_CALCULATED,
            on_budget,
            sources=from_function("sli-calculator"),
            remember=False,
        ),
    ],
)
handler = function.target()
