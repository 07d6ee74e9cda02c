"""The burn-rate presets reproduce the design's table, row by row."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sla.budget.windows import (
    burn_rate_table,
    check_timeslice,
    round_to_minute,
    unfloored_rows,
)
from sla.errors import SpecError
from sla.model.durations import format_duration

from .conftest import make_slo

M, H, D = 60, 3600, 86400

# (preset, window, severity, factor, long, short) straight from DESIGN.md's table.
DESIGN_TABLE = [
    ("google", "30d", "page", Fraction("14.4"), "1h", "5m"),
    ("google", "30d", "page", Fraction(6), "6h", "30m"),
    ("google", "30d", "ticket", Fraction(3), "1d", "2h"),
    ("google", "30d", "ticket", Fraction(1), "3d", "6h"),
    ("google", "28d", "page", Fraction("13.44"), "1h", "5m"),
    ("google", "28d", "page", Fraction("5.6"), "6h", "30m"),
    ("google", "28d", "ticket", Fraction("2.8"), "1d", "2h"),
    # 0.9333 in the table: 10 % of 28 days spent over 3 days is 2.8 / 3.
    ("google", "28d", "ticket", Fraction("2.8") / 3, "3d", "6h"),
    ("google", "7d", "page", Fraction("14.4"), "14m", "1m"),
    ("google", "7d", "page", Fraction(6), "1h24m", "7m"),
    ("google", "7d", "ticket", Fraction(3), "5h36m", "28m"),
    ("google", "7d", "ticket", Fraction(1), "16h48m", "1h24m"),
    ("pyrra", "28d", "page", Fraction(14), "1h", "5m"),
    ("pyrra", "28d", "page", Fraction(7), "6h", "30m"),
    ("pyrra", "28d", "ticket", Fraction(2), "1d", "2h"),
    ("pyrra", "28d", "ticket", Fraction(1), "4d", "6h"),
    ("pyrra", "30d", "page", Fraction(14), "1h4m", "5m"),
    ("pyrra", "30d", "page", Fraction(7), "6h26m", "32m"),
    ("pyrra", "30d", "ticket", Fraction(2), "1d1h43m", "2h9m"),
    ("pyrra", "30d", "ticket", Fraction(1), "4d6h51m", "6h26m"),
    ("pyrra", "7d", "page", Fraction(14), "15m", "1m"),
    ("pyrra", "7d", "page", Fraction(7), "1h30m", "8m"),
    ("pyrra", "7d", "ticket", Fraction(2), "6h", "30m"),
    ("pyrra", "7d", "ticket", Fraction(1), "1d", "1h30m"),
]


@pytest.mark.parametrize(
    ("preset", "window", "severity", "factor", "long", "short"),
    DESIGN_TABLE,
    ids=[f"{p}-{w}-{lw}/{sw}" for p, w, _, _, lw, sw in DESIGN_TABLE],
)
def test_preset_row_matches_design_table(
    preset: str, window: str, severity: str, factor: Fraction, long: str, short: str
) -> None:
    """Each row of the design's table is produced exactly, before the scrape floor."""
    slo = make_slo(window=window, alerting={"preset": preset})
    rows = unfloored_rows(slo.spec)
    found = [
        row
        for row in rows
        if format_duration(row.long_window) == long
        and format_duration(row.short_window) == short
    ]
    assert len(found) == 1, [(format_duration(r.long_window), r.factor) for r in rows]
    assert found[0].severity == severity
    assert found[0].factor == factor


def test_google_month_length_windows_keep_workbook_windows_and_scale_factors() -> None:
    """31 days: the windows stay 1h/5m …, factors follow (2 % of 744 h is 14.88)."""
    rows = unfloored_rows(make_slo(window="31d").spec)
    assert [(r.long_window, r.short_window) for r in rows] == [
        (H, 5 * M),
        (6 * H, 30 * M),
        (D, 2 * H),
        (3 * D, 6 * H),
    ]
    assert [r.factor for r in rows] == [
        Fraction(2, 100) * 744,
        Fraction(5, 100) * 744 / 6,
        Fraction(10, 100) * 744 / 24,
        Fraction(10, 100) * 744 / 72,
    ]


def test_short_windows_below_two_scrapes_are_raised_and_noted() -> None:
    """7d google: the 1m short window becomes 2m at a 60 s scrape interval."""
    table = burn_rate_table(make_slo(window="7d").spec, scrape_interval=60)
    page = table.rows[0]
    assert (page.long_window, page.short_window) == (14 * M, 2 * M)
    assert any("1m raised to 2m" in note for note in table.notes)


def test_floor_follows_the_scrape_interval() -> None:
    """At a 5 minute scrape interval the floor is 10 minutes."""
    table = burn_rate_table(make_slo(window="7d").spec, scrape_interval=300)
    assert table.rows[0].short_window == 10 * M
    assert table.rows[1].short_window == 10 * M  # 7m raised as well


def test_short_window_reaching_long_window_is_rejected() -> None:
    """A 1d SLO scales google's 1h/5m to 2m/0m; with a 2 minute floor both are 2m."""
    slo = make_slo(window="1d")
    with pytest.raises(SpecError, match="reaches long window"):
        burn_rate_table(slo.spec, scrape_interval=60)


def test_explicit_rows_are_kept_as_written() -> None:
    rows = [{"severity": "page", "longWindow": "10m", "shortWindow": "2m", "factor": 5}]
    table = burn_rate_table(make_slo(window="1h", alerting={"rows": rows}).spec)
    assert len(table.rows) == 1
    assert (table.rows[0].long_window, table.rows[0].short_window) == (10 * M, 2 * M)
    assert table.rows[0].factor == 5
    assert table.notes == ()


def test_empty_rows_mean_no_burn_rate_alerts() -> None:
    table = burn_rate_table(make_slo(alerting={"rows": []}).spec)
    assert table.rows == ()


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (Fraction(90), 2 * M),  # 1.5 minutes: halves round up
        (Fraction(89), M),
        (Fraction(450), 8 * M),  # 7.5 minutes: pyrra 7d short window
        (Fraction(10), M),  # never below one minute
    ],
)
def test_round_to_minute_rounds_halves_up(seconds: Fraction, expected: int) -> None:
    assert round_to_minute(seconds) == expected


def test_calendar_month_scales_like_thirty_days() -> None:
    month = unfloored_rows(make_slo(window="month", timeZone="Europe/Berlin").spec)
    thirty = unfloored_rows(make_slo(window="30d").spec)
    assert month == thirty


@pytest.mark.parametrize(
    ("length", "scrape_interval", "usable"),
    [
        pytest.param("1m", 60, False, id="1m-slices-60s-scrape"),
        pytest.param("119s", 60, False, id="just-under-two-scrapes"),
        pytest.param("2m", 60, True, id="two-scrapes"),
        pytest.param("1m", 30, True, id="1m-slices-30s-scrape"),
    ],
)
def test_a_slice_must_span_two_scrape_intervals(
    length: str, scrape_interval: int, usable: bool
) -> None:
    # increase() over a slice needs two samples of the series inside it.
    slo = make_slo(
        budgetingMethod="Timeslices", timeslice={"length": length, "target": 95}
    )

    if usable:
        check_timeslice(slo.spec, scrape_interval=scrape_interval)
        return
    with pytest.raises(SpecError) as raised:
        check_timeslice(slo.spec, scrape_interval=scrape_interval)
    assert raised.value.field == "spec.timeslice.length"
    assert f"use slices of at least {format_duration(2 * scrape_interval)}" in str(
        raised.value
    )


def test_occurrences_have_no_slices_to_check() -> None:
    check_timeslice(make_slo().spec, scrape_interval=3600)
