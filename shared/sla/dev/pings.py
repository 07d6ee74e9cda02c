"""The PingSources of ``eventing/``, ticking on one machine.

Each PingSource fires on its cron schedule in its time zone, as Knative's does, and
publishes ``dev.knative.sources.ping`` with the source a cluster would give it. For
tests and demos ``minute_seconds`` makes a schedule's minute last that many
seconds: ``* * * * *`` then fires every ``minute_seconds`` and ``*/15 * * * *``
every fifteen of them. Event times stay the real time of each firing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from sla.dev.manifests import PingSource
from sla.runtime.binding import RawEvent

PING_TYPE = "dev.knative.sources.ping"


def ping_event(ping: PingSource, *, at: datetime) -> RawEvent:
    attributes = {
        "specversion": "1.0",
        "type": PING_TYPE,
        "source": ping.source,
        "id": str(uuid.uuid4()),
        "time": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    data = ping.data.encode() if ping.data else None
    if data is not None:
        attributes["datacontenttype"] = "application/json"
    return RawEvent(attributes, data, "binary")


def period_seconds(ping: PingSource, *, at: datetime) -> float:
    """Seconds between two firings of the schedule around ``at``."""
    schedule = croniter(ping.schedule, at.astimezone(ZoneInfo(ping.timezone)))
    first = schedule.get_next(datetime)
    second = schedule.get_next(datetime)
    return float((second - first).total_seconds())


def seconds_to_next(ping: PingSource, *, at: datetime) -> float:
    local = at.astimezone(ZoneInfo(ping.timezone))
    following = croniter(ping.schedule, local).get_next(datetime)
    return max(float((following - local).total_seconds()), 0.0)


class PingScheduler:
    """Fires every PingSource into ``publish`` until stopped."""

    def __init__(
        self,
        pings: tuple[PingSource, ...],
        publish: Callable[[RawEvent], None],
        *,
        minute_seconds: float | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pings = pings
        self.publish = publish
        self.minute_seconds = minute_seconds
        self.clock = clock
        self.fired: dict[str, int] = {ping.name: 0 for ping in pings}

    async def run(self) -> None:
        await asyncio.gather(*(self._loop(ping) for ping in self.pings))

    async def _loop(self, ping: PingSource) -> None:
        while True:
            await asyncio.sleep(self._wait(ping))
            self.publish(ping_event(ping, at=self.clock()))
            self.fired[ping.name] += 1

    def _wait(self, ping: PingSource) -> float:
        now = self.clock()
        if self.minute_seconds is None:
            return seconds_to_next(ping, at=now)
        return period_seconds(ping, at=now) / 60 * self.minute_seconds
