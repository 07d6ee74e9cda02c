"""Opening what the settings name: the store (embedded when no URL is set) and
Prometheus clients per datasource. Shared by the command line and the functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sla.clients.embedded import EmbeddedPostgres
from sla.clients.prometheus import PrometheusClient, RetryPolicy
from sla.clients.store import Store
from sla.runtime.settings import Settings


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """The configured PostgreSQL, or the embedded one, migrated and ready."""
    embedded: EmbeddedPostgres | None = None
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
    else:
        embedded = EmbeddedPostgres(settings.embedded_postgres_dir)
        url = await asyncio.to_thread(embedded.start)
    try:
        store = await Store.open(url, pool_size=settings.database_pool_size)
        try:
            yield store
        finally:
            await store.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


class Datasources:
    """One Prometheus client per datasource URL, made on first use.

    The default datasource takes the configured token; another URL named by an SLO
    takes none unless given here, so a token never travels to a host it was not
    meant for. ``retry`` replaces the clients' default retry policy.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        tokens: dict[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ):
        self.default_url = settings.prometheus_url.rstrip("/")
        self._settings = settings
        self._retry = retry
        self._tokens = dict(tokens or {})
        if settings.prometheus_token is not None:
            self._tokens[self.default_url] = (
                settings.prometheus_token.get_secret_value()
            )
        self._clients: dict[str, PrometheusClient] = {}
        self._counted: dict[str, tuple[int, int]] = {}

    def client_for(self, url: str) -> PrometheusClient:
        url = url.rstrip("/")
        if url not in self._clients:
            self._clients[url] = PrometheusClient(
                url,
                token=self._tokens.get(url),
                timeout=self._settings.prometheus_timeout_seconds,
                concurrency=self._settings.evaluation_concurrency,
                retry=self._retry,
            )
        return self._clients[url]

    @property
    def clients(self) -> dict[str, PrometheusClient]:
        return dict(self._clients)

    def take_query_counts(self) -> tuple[int, int]:
        """Requests answered and failed since the last call, over every client.

        Each request is counted by exactly one call, whichever evaluation sent it,
        so evaluations running at once in this process never count one twice.
        """
        answered = failed = 0
        for url, client in self._clients.items():
            before = self._counted.get(url, (0, 0))
            now = (client.stats.queries, client.stats.failed)
            answered += now[0] - before[0]
            failed += now[1] - before[1]
            self._counted[url] = now
        return answered, failed

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._clients.values()))
        self._clients.clear()
        self._counted.clear()
