"""The pure parts of budget-api: history downsampling, cursors, times, the bar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sla.services.budget_api import (
    InvalidInput,
    decode_cursor,
    downsample,
    encode_cursor,
    parse_instant,
    parse_step,
)
from sla.services.status_page import bar_width, budget_cell, percent
from tests.support.budget_api import snapshot

START = datetime(2025, 3, 1, tzinfo=UTC)


def test_downsampling_keeps_the_last_snapshot_of_each_step_and_leaves_gaps() -> None:
    at = [0, 30, 59, 61, 200]  # seconds after START; steps of 60 s
    snapshots = [snapshot("a/b", 0.5, at=START + timedelta(seconds=s)) for s in at]

    kept = downsample(snapshots, start=START, step=60)

    # Step 0 holds 0, 30, 59 → 59; step 1 holds 61; step 2 is empty; step 3 holds 200.
    assert [(s.evaluated_at - START).seconds for s in kept] == [59, 61, 200]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1740787200", START),
        ("1740787200.5", START + timedelta(milliseconds=500)),
        ("2025-03-01T00:00:00Z", START),
        ("2025-03-01T01:00:00+01:00", START),
    ],
)
def test_instants_are_rfc3339_or_unix_seconds(text: str, expected: datetime) -> None:
    assert parse_instant(text, field="from") == expected


@pytest.mark.parametrize("text", ["2025-03-01T00:00:00", "soon", "nan", "1e300"])
def test_instants_without_a_zone_or_not_times_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_instant(text, field="from")

    assert refused.value.field == "from"


def test_steps_are_durations_or_seconds() -> None:
    assert parse_step("5m") == 300
    assert parse_step("90") == 90
    with pytest.raises(InvalidInput):
        parse_step("0")


def test_cursors_round_trip_and_others_are_refused() -> None:
    assert decode_cursor(encode_cursor(40)) == 40
    for wrong in ("", "e30", encode_cursor(-1)):
        with pytest.raises(InvalidInput):
            decode_cursor(wrong)


@pytest.mark.parametrize(
    ("remaining", "width"),
    [(0.25, 25.0), (1.4, 100.0), (-0.3, 0.0), (None, 0.0), (float("nan"), 0.0)],
)
def test_the_bar_is_remaining_clamped_to_0_100(
    remaining: float | None, width: float
) -> None:
    assert bar_width(remaining) == width


def test_an_overspent_budget_says_so_in_words() -> None:
    assert "overspent 30.0 %" in budget_cell(-0.3)
    assert percent(0.2534) == "25.3 %"
