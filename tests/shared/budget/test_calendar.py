"""Calendar windows start at local midnight of the week's Monday or the month's 1st."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sla.budget.calendar import period_end, period_start

BERLIN = ZoneInfo("Europe/Berlin")


def test_month_starts_on_the_first_at_local_midnight() -> None:
    """Berlin is UTC+1 in winter: 1 Feb 00:00 local is 31 Jan 23:00 UTC."""
    at = datetime(2024, 2, 15, 12, 0, tzinfo=UTC)
    assert period_start(at, unit="month", zone=BERLIN) == datetime(
        2024, 1, 31, 23, 0, tzinfo=UTC
    )


def test_february_2024_has_29_days() -> None:
    at = datetime(2024, 2, 10, tzinfo=UTC)
    utc = ZoneInfo("UTC")
    length = period_end(at, unit="month", zone=utc) - period_start(
        at, unit="month", zone=utc
    )
    assert length.days == 29


def test_month_with_dst_change_is_an_hour_short() -> None:
    """March 2024 in Berlin loses an hour on the 31st: 31 × 24 − 1 = 743 hours."""
    at = datetime(2024, 3, 20, tzinfo=UTC)
    length = period_end(at, unit="month", zone=BERLIN) - period_start(
        at, unit="month", zone=BERLIN
    )
    assert length.total_seconds() == (31 * 24 - 1) * 3600


def test_week_starts_on_monday_in_the_zone() -> None:
    """Sunday 3 Nov 2024 23:30 UTC is already Monday 4 Nov 00:30 in Berlin (UTC+1)."""
    at = datetime(2024, 11, 3, 23, 30, tzinfo=UTC)
    assert period_start(at, unit="week", zone=BERLIN) == datetime(
        2024, 11, 3, 23, 0, tzinfo=UTC
    )


def test_week_across_autumn_dst_change_is_169_hours() -> None:
    """Berlin leaves summer time on 27 Oct 2024, inside the week from 21 Oct."""
    at = datetime(2024, 10, 24, tzinfo=UTC)
    start = period_start(at, unit="week", zone=BERLIN)
    assert start == datetime(2024, 10, 20, 22, 0, tzinfo=UTC)  # Monday 00:00 CEST
    assert (period_end(at, unit="week", zone=BERLIN) - start).total_seconds() == (
        169 * 3600
    )


def test_december_rolls_into_next_year() -> None:
    at = datetime(2024, 12, 31, 12, tzinfo=UTC)
    utc = ZoneInfo("UTC")
    assert period_end(at, unit="month", zone=utc) == datetime(2025, 1, 1, tzinfo=UTC)
