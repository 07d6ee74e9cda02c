"""Request counters for the evaluation benchmark: one service per SLO.

Every service answers a constant number of requests each minute, a constant few of
them errors; every fifth service also has one outage in the four weeks before the
anchor, with a higher, still constant, share of errors. Counts are whole numbers per
60 s step, so any window of whole minutes has an exact good/total ratio, and the
expected counts of a window are plain arithmetic (:meth:`Service.counts`).

Outages sit at least an hour away from every multiple of a day before the anchor,
and none in the last day: the edges of the 1h, 12h, 7d and 28d windows, asked a few
minutes either side of the anchor, then fall in steady minutes. That matters for the
comparison with slo-generator, which asks at the wall clock, off the 60 s grid: a
window read off the grid loses its first minute and is extrapolated, which leaves its
ratio unchanged only where the minutes at its edges are like the rest.

The text is written straight to a file, series by series, because a month of 2,000
series is 86 million samples (several gigabytes): the test harness builds its
OpenMetrics text in memory with exact fractions, which is right for tests and far
too slow here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from tests.support.prometheus import DEFAULT_STEP_SECONDS

STEP: Final = DEFAULT_STEP_SECONDS
DAY: Final = 86_400
HOUR: Final = 3_600

METRIC: Final = "http_requests_total"
GOOD_CODE: Final = "200"
BAD_CODE: Final = "500"

# Steady traffic from 2,000 to 11,900 requests a minute (33 to 198 per second) with
# one error a minute: error ratios of 0.008 % to 0.05 %, a tenth to a half of a
# 99.9 % objective's budget.
BASE_PER_STEP: Final = 2_000
PER_STEP_SPREAD: Final = 100
STEADY_BAD_PER_STEP: Final = 1

OUTAGE_EVERY: Final = 5
"""Every fifth service has an outage."""
OUTAGE_ERROR_PERCENT: Final = (1, 2, 5, 10, 20)
# Outages lie in the day that ends ``d`` days before the anchor, d from 2 to 26,
# from hour 1 to at most hour 22 of that day (18 + 4 h): an hour or more away from
# the day's ends, where the windows' edges are.
OUTAGE_DAYS: Final = range(2, 27)
OUTAGE_LATEST_START_HOUR: Final = 18
OUTAGE_MAX_MINUTES: Final = 240

# Large writes: the file runs to gigabytes.
BUFFER_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True)
class Outage:
    """Steps ending in ``(start, end]`` have ``bad_per_step`` errors."""

    start: int
    end: int
    bad_per_step: int


@dataclass(frozen=True)
class Service:
    name: str
    per_step: int
    bad_per_step: int
    outage: Outage | None

    def bad_in_step(self, end: int) -> int:
        """Errors of the step that ends at ``end`` (Unix seconds, on the grid)."""
        outage = self.outage
        if outage is not None and outage.start < end <= outage.end:
            return outage.bad_per_step
        return self.bad_per_step

    def counts(self, start: int, end: int) -> tuple[int, int]:
        """Good and total requests of the steps ending in ``(start, end]``."""
        steps = (end - start) // STEP
        bad = steps * self.bad_per_step
        outage = self.outage
        if outage is not None:
            overlap = max(0, min(end, outage.end) - max(start, outage.start)) // STEP
            bad += overlap * (outage.bad_per_step - self.bad_per_step)
        total = steps * self.per_step
        return total - bad, total


def service_name(index: int) -> str:
    return f"svc-{index:04d}"


def make_services(count: int, *, anchor: int) -> list[Service]:
    """``count`` services; outages placed relative to ``anchor`` (on the grid)."""
    return [_service(index, anchor=anchor) for index in range(count)]


def _service(index: int, *, anchor: int) -> Service:
    per_step = BASE_PER_STEP + PER_STEP_SPREAD * (index % 100)
    outage = None
    if index % OUTAGE_EVERY == 0:
        # Spread the outages over days, hours, lengths and severities.
        nth = index // OUTAGE_EVERY
        days_before = OUTAGE_DAYS[nth % len(OUTAGE_DAYS)]
        hour = 1 + (index * 7) % OUTAGE_LATEST_START_HOUR
        minutes = 30 + (index * 13) % (OUTAGE_MAX_MINUTES - 30 + 1)
        percent = OUTAGE_ERROR_PERCENT[nth % len(OUTAGE_ERROR_PERCENT)]
        start = anchor - days_before * DAY + hour * HOUR
        outage = Outage(start, start + minutes * 60, per_step * percent // 100)
    return Service(service_name(index), per_step, STEADY_BAD_PER_STEP, outage)


def write_openmetrics(
    path: Path, services: Sequence[Service], *, start: int, end: int
) -> int:
    """Write every service's good and bad counters from ``start`` to ``end``.

    Both ends are on the grid. Counters read 0 at ``start``; the events of the step
    ending at ``t`` are in the sample at ``t``, as in the test harness. Returns the
    number of samples written.
    """
    samples = 0
    with path.open("w", encoding="utf-8", buffering=BUFFER_BYTES) as out:
        out.write(f"# TYPE {METRIC.removesuffix('_total')} counter\n")
        for service in services:
            for code, bad in ((GOOD_CODE, False), (BAD_CODE, True)):
                name = f'{METRIC}{{service="{service.name}",code="{code}"}}'
                segments = _segments(service, start, end, bad=bad)
                samples += _write_series(out, name, start, segments)
        out.write("# EOF\n")
    return samples


def _segments(
    service: Service, start: int, end: int, *, bad: bool
) -> list[tuple[int, int, int]]:
    """(from, to, increment per step) for the steps ending in ``(from, to]``."""
    bounds = [start, end]
    if service.outage is not None:
        bounds += [service.outage.start, service.outage.end]
    edges = sorted({min(max(edge, start), end) for edge in bounds})
    segments = []
    for low, high in itertools.pairwise(edges):
        errors = service.bad_in_step(high)
        segments.append((low, high, errors if bad else service.per_step - errors))
    return segments


def _write_series(
    out: TextIO, name: str, start: int, segments: Iterable[tuple[int, int, int]]
) -> int:
    # One %-template per series: formatting 86 million lines is most of the time
    # spent here, and this is the fastest way found (about 0.4 µs a line).
    template = name + " %d %d\n"
    out.write(template % (0, start))
    value, written = 0, 1
    for low, high, increment in segments:
        steps = (high - low) // STEP
        times = range(low + STEP, high + 1, STEP)
        values = (
            range(value + increment, value + increment * steps + 1, increment)
            if increment
            else itertools.repeat(value, steps)
        )
        out.write("".join(map(template.__mod__, zip(values, times, strict=True))))
        value += increment * steps
        written += steps
    return written
