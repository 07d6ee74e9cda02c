"""Burn-rate tables: the presets, their scaling to an SLO's window, and the floor.

``google`` follows the SRE workbook's multiwindow, multi-burn-rate table (chapter
"Alerting on SLOs"): four rows spending 2 %, 5 %, 10 % and 10 % of a 30-day budget.
For SLO windows of 28 to 31 days the workbook's windows are kept and each factor is
``budget share × SLO window / long window``, as Sloth computes them; for other windows
the windows scale by ``window / 30d`` and the factors stay 14.4, 6, 3 and 1.

``pyrra`` uses Pyrra's factors 14, 7, 2, 1 with windows defined for 28 days and scaled
by ``window / 28d``.

Scaled windows round to the nearest whole minute, halves up. Any window shorter than
two scrape intervals is raised to that floor, since ``increase()`` needs two samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from sla.errors import SpecError
from sla.model.durations import format_duration
from sla.model.slo import SLOSpec

Severity = Literal["page", "ticket"]

DAY = 86400
HOUR = 3600
MINUTE = 60

# (severity, share of the budget, long window, short window), SRE workbook table 5-8.
GOOGLE_ROWS: tuple[tuple[Severity, Fraction, int, int], ...] = (
    ("page", Fraction(2, 100), HOUR, 5 * MINUTE),
    ("page", Fraction(5, 100), 6 * HOUR, 30 * MINUTE),
    ("ticket", Fraction(10, 100), DAY, 2 * HOUR),
    ("ticket", Fraction(10, 100), 3 * DAY, 6 * HOUR),
)
GOOGLE_BASE_WINDOW = 30 * DAY
# The workbook's windows fit any month-long SLO window; Sloth keeps them for 28–31 d.
GOOGLE_KEEP_WINDOWS = (28 * DAY, 31 * DAY)

# (severity, factor, long window, short window) for a 28-day window, from Pyrra.
PYRRA_ROWS: tuple[tuple[Severity, Fraction, int, int], ...] = (
    ("page", Fraction(14), HOUR, 5 * MINUTE),
    ("page", Fraction(7), 6 * HOUR, 30 * MINUTE),
    ("ticket", Fraction(2), DAY, 2 * HOUR),
    ("ticket", Fraction(1), 4 * DAY, 6 * HOUR),
)
PYRRA_BASE_WINDOW = 28 * DAY


@dataclass(frozen=True)
class BurnRateWindow:
    """One row of a burn-rate table, in seconds, ready to evaluate."""

    severity: Severity
    long_window: int
    short_window: int
    factor: Fraction


@dataclass(frozen=True)
class BurnRateTable:
    rows: tuple[BurnRateWindow, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def windows(self) -> tuple[int, ...]:
        """Every distinct window the table needs, shortest first."""
        seen = {row.long_window for row in self.rows} | {
            row.short_window for row in self.rows
        }
        return tuple(sorted(seen))


def round_to_minute(seconds: Fraction) -> int:
    """Nearest whole minute, halves up; at least one minute."""
    minutes = (seconds / MINUTE + Fraction(1, 2)).__floor__()
    return max(int(minutes), 1) * MINUTE


def google_rows(window_seconds: int) -> list[BurnRateWindow]:
    low, high = GOOGLE_KEEP_WINDOWS
    if low <= window_seconds <= high:
        return [
            BurnRateWindow(severity, long, short, share * window_seconds / long)
            for severity, share, long, short in GOOGLE_ROWS
        ]
    scale = Fraction(window_seconds, GOOGLE_BASE_WINDOW)
    return [
        BurnRateWindow(
            severity,
            round_to_minute(long * scale),
            round_to_minute(short * scale),
            share * GOOGLE_BASE_WINDOW / long,
        )
        for severity, share, long, short in GOOGLE_ROWS
    ]


def pyrra_rows(window_seconds: int) -> list[BurnRateWindow]:
    scale = Fraction(window_seconds, PYRRA_BASE_WINDOW)
    return [
        BurnRateWindow(
            severity,
            round_to_minute(long * scale),
            round_to_minute(short * scale),
            factor,
        )
        for severity, factor, long, short in PYRRA_ROWS
    ]


def unfloored_rows(spec: SLOSpec) -> list[BurnRateWindow]:
    """The table as the preset or the rows define it, before the scrape floor."""
    preset = spec.alerting.effective_preset
    window = spec.window.nominal_seconds
    if preset == "google":
        return google_rows(window)
    if preset == "pyrra":
        return pyrra_rows(window)
    return [
        BurnRateWindow(
            row.severity,
            row.long_window,
            row.short_window,
            Fraction(str(row.factor)),
        )
        for row in spec.alerting.rows or ()
    ]


def burn_rate_table(spec: SLOSpec, *, scrape_interval: int = 60) -> BurnRateTable:
    """The SLO's burn-rate table with every window at least two scrape intervals.

    Raises SpecError when raising a short window makes it reach its long window.
    """
    floor = 2 * scrape_interval
    rows: list[BurnRateWindow] = []
    notes: list[str] = []
    for row in unfloored_rows(spec):
        long, short = max(row.long_window, floor), max(row.short_window, floor)
        for name, before, after in (
            ("long", row.long_window, long),
            ("short", row.short_window, short),
        ):
            if after != before:
                notes.append(
                    f"{row.severity} row {float(row.factor):g}: {name} window "
                    f"{format_duration(before)} raised to {format_duration(after)} "
                    f"(two scrape intervals of {scrape_interval}s)"
                )
        if short >= long:
            raise SpecError(
                f"short window {format_duration(short)} reaches long window "
                f"{format_duration(long)} after raising windows to two scrape "
                f"intervals of {scrape_interval}s ({format_duration(floor)}); if "
                "Prometheus scrapes more often, say so with "
                "SLA_SCRAPE_INTERVAL_SECONDS (sla rules: --scrape-interval), else "
                "use longer windows",
                field="spec.alerting",
            )
        rows.append(BurnRateWindow(row.severity, long, short, row.factor))
    return BurnRateTable(rows=tuple(rows), notes=tuple(dict.fromkeys(notes)))


def check_timeslice(spec: SLOSpec, *, scrape_interval: int = 60) -> None:
    """Raise SpecError when a slice is shorter than two scrape intervals.

    A slice is measured by ``increase`` over its length, which needs two samples
    of a series inside it: with fewer, Prometheus answers nothing, and slices that
    had traffic would be left out of the budget without a word.
    """
    if spec.timeslice is None or spec.timeslice.length >= 2 * scrape_interval:
        return
    raise SpecError(
        f"a slice of {format_duration(spec.timeslice.length)} holds fewer than two "
        f"samples when Prometheus scrapes every {scrape_interval}s, and a slice "
        f"needs two to be measured; use slices of at least "
        f"{format_duration(2 * scrape_interval)}, or, if Prometheus scrapes more "
        "often, say so with SLA_SCRAPE_INTERVAL_SECONDS",
        field="spec.timeslice.length",
    )
