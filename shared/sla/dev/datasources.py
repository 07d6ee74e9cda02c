"""Whether the datasources of ``sla dev`` answer, for its console to tell.

sli-calculator answers a tick it cannot evaluate with a 503 that only the broker
sees, and the broker retries it; on the console the budgets simply stop changing.
So the console asks each datasource a query of its own, and says once when one
stops answering, with the reason, and once when it answers again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from sla.clients.prometheus import (
    QueryRejected,
    QueryUnavailable,
    RetryPolicy,
    without_credentials,
)
from sla.errors import DatasourceError
from sla.model.slo import SLODefinition
from sla.runtime.resources import Datasources
from sla.runtime.settings import Settings

PROBE_QUERY: Final = "vector(1)"
"""Any Prometheus answers it without reading a series."""

CHECK_SECONDS: Final = 10.0
"""Between checks: several within each one-minute evaluation tick, at the cost of
one query that reads nothing."""

# One attempt a check: the next check is the retry, and a datasource that does
# not answer is told at once rather than after the backoff of an evaluation.
_ONE_ATTEMPT: Final = RetryPolicy(max_attempts=1)


class DatasourceWatch:
    """The datasources found unusable, and why; ``check`` reports the changes."""

    def __init__(self, settings: Settings) -> None:
        self._datasources = Datasources(settings, retry=_ONE_ATTEMPT)
        self._unusable: dict[str, str] = {}

    @property
    def default_url(self) -> str:
        return self._datasources.default_url

    def urls(self, slos: Iterable[SLODefinition]) -> set[str]:
        """The default datasource and every other one the SLOs name."""
        urls = {self.default_url}
        for slo in slos:
            source = slo.spec.datasource
            if source is not None and source.url:
                urls.add(source.url.rstrip("/"))
        return urls

    async def check(self, urls: Iterable[str]) -> list[str]:
        """Ask every datasource once; a line for each that stopped or started
        answering since the last check, none for one that is as it was."""
        wanted = sorted({url.rstrip("/") for url in urls})
        reasons = await asyncio.gather(*(self._probe(url) for url in wanted))
        lines = []
        for url, reason in zip(wanted, reasons, strict=True):
            shown = without_credentials(url)
            if reason is not None and url not in self._unusable:
                lines.append(
                    f"datasource {shown} unusable: {reason}; the SLOs it serves are "
                    "not evaluated until it answers"
                )
            elif reason is None and url in self._unusable:
                lines.append(f"datasource {shown} answers again")
        self._unusable = {
            url: reason
            for url, reason in zip(wanted, reasons, strict=True)
            if reason is not None
        }
        return lines

    async def aclose(self) -> None:
        await self._datasources.aclose()

    async def _probe(self, url: str) -> str | None:
        """Why the datasource cannot be used, or None when it answers."""
        client = self._datasources.client_for(url)
        try:
            await client.instant(PROBE_QUERY, time=datetime.now(UTC))
        except (QueryRejected, QueryUnavailable) as error:
            # Without the query, which is this module's, and the URL, which the
            # line names already.
            return error.message.removeprefix(f"Prometheus at {client.url}: ")
        except DatasourceError as error:
            return str(error)
        return None
