"""What a function's handlers talk to, opened on first use and closed at shutdown.

A function process is forked by the server after its module is imported, and a pool
belongs to the event loop that opened it, so nothing is opened at import: the store,
the cache, the Prometheus clients, the Kubernetes client and the event sink are each
made the first time a handler asks, inside the serving loop. A function that never
touches the cluster never imports the ``kubernetes`` package (a third of a second).
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Final

from sla.clients.cache import BudgetCache
from sla.clients.store import Store
from sla.runtime.resources import Datasources, open_store
from sla.runtime.settings import Settings
from sla.runtime.sink import EventSink

if TYPE_CHECKING:
    from sla.clients.kube import KubeClient

IN_CLUSTER: Final = "KUBERNETES_SERVICE_HOST"
"""Set by the kubelet in every container: the in-cluster configuration's marker."""


class Dependencies:
    """The clients of one function process, each made once, on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.datasources = Datasources(settings)
        self.sink = EventSink(settings.k_sink)
        self._exit = AsyncExitStack()
        self._store: Store | None = None
        self._cache: BudgetCache | None = None
        self._kube: KubeClient | None = None
        self._store_lock: asyncio.Lock | None = None

    async def store(self) -> Store:
        """The store, opened (and migrated) by the first caller."""
        if self._store is not None:
            return self._store
        if self._store_lock is None:
            self._store_lock = asyncio.Lock()
        async with self._store_lock:
            if self._store is None:
                self._store = await self._exit.enter_async_context(
                    open_store(self.settings)
                )
        return self._store

    async def cache(self) -> BudgetCache:
        """The latest-budget cache (Redis when configured), over the store."""
        if self._cache is None:
            store = await self.store()
            url = self.settings.redis_url
            self._cache = BudgetCache.from_url(
                None if url is None else url.get_secret_value(),
                store,
                ttl_seconds=self.settings.cache_ttl_seconds,
            )
        return self._cache

    async def kube(self) -> KubeClient:
        """The Kubernetes API: ``SLA_KUBECONFIG`` if set, else the pod's account."""
        if self._kube is None:
            self._kube = await asyncio.to_thread(self._open_kube)
        return self._kube

    async def kube_if_configured(self) -> KubeClient | None:
        """The Kubernetes API, or None when there is none to talk to: no
        ``SLA_KUBECONFIG`` and not in a pod (no ``KUBERNETES_SERVICE_HOST``, which
        the kubelet sets in every container), as on a workstation or in ``sla dev``.
        """
        if self.settings.kubeconfig is None and not os.environ.get(IN_CLUSTER):
            return None
        return await self.kube()

    def _open_kube(self) -> KubeClient:
        from sla.clients.kube import KubeClient

        path = self.settings.kubeconfig
        if path is not None:
            return KubeClient.from_kubeconfig(path, context=self.settings.kube_context)
        return KubeClient.in_cluster()

    async def aclose(self) -> None:
        """Close whatever was opened; safe to call twice."""
        if self._cache is not None:
            await self._cache.close()
            self._cache = None
        if self._kube is not None:
            self._kube.close()
            self._kube = None
        await self.datasources.aclose()
        await self.sink.close()
        await self._exit.aclose()
        self._store = None
