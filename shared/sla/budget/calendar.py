"""Calendar windows: the current week (from Monday) or month, in the SLO's zone.

The start is local midnight, found through the zone's rules, so a window keeps its
meaning across daylight-saving changes: the week that contains a switch is 167 or
169 hours long, and February 2024 has 29 days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

CalendarUnit = Literal["week", "month"]


def period_start(at: datetime, *, unit: CalendarUnit, zone: ZoneInfo) -> datetime:
    """The start, in UTC, of the week or month that contains ``at`` in ``zone``."""
    local = at.astimezone(zone)
    if unit == "month":
        start_date = local.date().replace(day=1)
    else:
        start_date = local.date() - timedelta(days=local.weekday())
    return _local_midnight(start_date.year, start_date.month, start_date.day, zone)


def period_end(at: datetime, *, unit: CalendarUnit, zone: ZoneInfo) -> datetime:
    """The start, in UTC, of the next week or month after the one holding ``at``."""
    start = period_start(at, unit=unit, zone=zone).astimezone(zone)
    if unit == "month":
        year, month = (
            (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        )
        return _local_midnight(year, month, 1, zone)
    following = start.date() + timedelta(days=7)
    return _local_midnight(following.year, following.month, following.day, zone)


def _local_midnight(year: int, month: int, day: int, zone: ZoneInfo) -> datetime:
    # Wall-clock arithmetic in the zone, then to UTC: zoneinfo applies the offset
    # in force at that local time (a midnight skipped by DST does not occur in
    # any IANA zone used in practice, and fold=0 picks the first if repeated).
    return datetime(year, month, day, tzinfo=zone).astimezone(UTC)
