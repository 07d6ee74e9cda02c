"""Holding and releasing one object: the Kubernetes calls of the freeze-enforcer.

Every write is a merge patch carrying the resourceVersion that was read; a 409
means someone wrote in between, so the object is read again and the patch built
anew, a bounded number of times. The store is written in the order that makes a
crash at any point safe to redo:

- hold: record the holder (and, for the first holder, the prior state) before the
  object is patched, so the state before the freeze is never lost;
- release: restore (or rename the holders on) the object before the holder is
  removed from the store, so the prior state is there until it has been put back.

403 becomes a failed outcome with the verb and status; 404 means the object is
gone, which is fine; 429/5xx and no answer raise KubeUnavailable to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sla.clients.kube import APP_PROJECT, KINDS, JsonObject, KubeClient, ResourceKind
from sla.clients.store import ObjectRef, Store
from sla.errors import KubeConflict, KubeForbidden, KubeNotFound
from sla.model.freeze import ObjectOutcome, ObjectOutcomeName
from sla.policy.holds import (
    changes,
    freeze_patch,
    holders_patch,
    is_exempt,
    mode_of,
    prior_state,
    restore_patch,
    with_window,
    without_window,
)

CONFLICT_ATTEMPTS: Final = 4
"""Writes per object before a conflict is reported: each 409 means another writer
got in between; four in a row is a fight (a controller rewriting the object), not
bad luck, and the freeze is better reported failed than retried forever."""


class StillConflicting(Exception):
    """The object changed under every attempt to write it."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        super().__init__(f"{verb}: conflict on each of {CONFLICT_ATTEMPTS} attempts")


class Exempt(Exception):
    """The object carries the exemption annotation."""


@dataclass(frozen=True)
class Target:
    """One object to hold or release, with the object as listed (if it was)."""

    kind: ResourceKind
    namespace: str
    name: str
    listed: JsonObject | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind.group, self.kind.kind, self.namespace, self.name)

    @classmethod
    def of(cls, obj: JsonObject) -> Target:
        metadata = obj["metadata"]
        kind = KINDS[obj["kind"]]
        return cls(kind, metadata["namespace"], metadata["name"], obj)

    @classmethod
    def from_ref(cls, ref: ObjectRef) -> Target:
        return cls(KINDS[ref.kind], ref.namespace, ref.name)

    def outcome(
        self,
        outcome: ObjectOutcomeName,
        *,
        verb: str | None = None,
        status: int | None = None,
        reason: str | None = None,
    ) -> ObjectOutcome:
        return ObjectOutcome(
            api_version=self.kind.api_version,
            kind=self.kind.kind,
            namespace=self.namespace,
            name=self.name,
            outcome=outcome,
            verb=verb,
            status=status,
            reason=reason,
        )


@dataclass(frozen=True)
class Holder:
    """The Kubernetes and store calls of one decision."""

    kube: KubeClient
    store: Store
    policy: str
    reason: str
    now: datetime

    async def hold(self, target: Target) -> ObjectOutcome:
        try:
            if mode_of(target.kind.kind) == "argocd":
                await self._hold_application(target)
            else:
                await self._settle(target, self._freeze_patch, first=target.listed)
        except Exempt:
            return target.outcome("exempt", reason="sla.dev/freeze-exempt is set")
        except _Gone:
            return target.outcome("gone")
        except (KubeForbidden, StillConflicting) as error:
            return _failed(target, error)
        return target.outcome("applied")

    async def release(self, target: Target) -> ObjectOutcome:
        try:
            await self._release(target)
        except _Gone:
            await self.store.release_object(target.ref, holder=self.policy)
            return target.outcome("gone")
        except (KubeForbidden, StillConflicting) as error:
            return _failed(target, error)
        return target.outcome("released")

    async def _freeze_patch(self, obj: JsonObject) -> JsonObject:
        if is_exempt(obj):
            raise Exempt
        held = await self.store.hold_object(
            Target.of(obj).ref,
            holder=self.policy,
            prior_state=prior_state(obj),
            at=self.now,
        )
        return freeze_patch(
            obj, holders=held.holders, since=held.frozen_since, reason=self.reason
        )

    async def _hold_application(self, target: Target) -> None:
        app = await self._settle(target, self._freeze_patch, first=target.listed)
        project = _project_of(app)

        async def add_window(found: JsonObject) -> JsonObject | None:
            windows = with_window(_windows(found), target.name)
            return None if windows is None else {"spec": {"syncWindows": windows}}

        await self._settle(project, add_window)

    async def _release(self, target: Target) -> None:
        held = await self.store.frozen_object(target.ref)
        if held is None or self.policy not in held.holders:
            return  # released before: a redelivery, or never held
        remaining = [h for h in held.holders if h != self.policy]

        async def restore(obj: JsonObject) -> JsonObject:
            if remaining:
                return holders_patch(remaining)
            return restore_patch(obj, held.prior_state)

        if mode_of(target.kind.kind) == "argocd" and not remaining:
            # The window goes first: the refresh asked for by the restore must
            # find the project without it.
            await self._remove_window(target, await self._read(target))
        await self._settle(target, restore)
        await self.store.release_object(target.ref, holder=self.policy)

    async def _remove_window(self, target: Target, app: JsonObject) -> None:
        async def drop_window(found: JsonObject) -> JsonObject | None:
            windows = without_window(_windows(found), target.name)
            return None if windows is None else {"spec": {"syncWindows": windows}}

        # A project that is gone took its windows with it.
        with contextlib.suppress(_Gone):
            await self._settle(_project_of(app), drop_window)

    async def _settle(
        self,
        target: Target,
        build: Callable[[JsonObject], Awaitable[JsonObject | None]],
        *,
        first: JsonObject | None = None,
    ) -> JsonObject:
        """Read, patch with the version read, and on a conflict read again."""
        obj = first
        for _ in range(CONFLICT_ATTEMPTS):
            if obj is None:
                obj = await self._read(target)
            patch = await build(obj)
            if patch is None or not changes(obj, patch):
                return obj
            version = obj["metadata"].get("resourceVersion")
            try:
                return await asyncio.to_thread(
                    self.kube.merge_patch,
                    target.kind,
                    target.namespace,
                    target.name,
                    patch,
                    resource_version=version,
                )
            except KubeConflict:
                obj = None
            except KubeNotFound as error:
                raise _Gone from error
        raise StillConflicting("patch")

    async def _read(self, target: Target) -> JsonObject:
        try:
            return await asyncio.to_thread(
                self.kube.get, target.kind, target.namespace, target.name
            )
        except KubeNotFound as error:
            raise _Gone from error


class _Gone(Exception):
    """The object does not exist (any more)."""


def _failed(target: Target, error: KubeForbidden | StillConflicting) -> ObjectOutcome:
    if isinstance(error, StillConflicting):
        return target.outcome("failed", verb=error.verb, status=409, reason=str(error))
    where = f"{error.kind} {error.namespace}/{error.name}"
    return target.outcome(
        "failed",
        verb=error.verb,
        status=error.status,
        reason=f"{where}: {error.message}",
    )


def _project_of(app: JsonObject) -> Target:
    # Argo CD keeps an Application's AppProject in its own control-plane
    # namespace, which is also where its Applications live.
    name = (app.get("spec") or {}).get("project") or "default"
    return Target(APP_PROJECT, app["metadata"]["namespace"], name)


def _windows(project: JsonObject) -> list[Any]:
    return list((project.get("spec") or {}).get("syncWindows") or [])
