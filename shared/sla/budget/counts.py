"""Event counts of one window, and the ratios that follow from them.

Counts come from Prometheus as floats. They are checked once, here, and every ratio
is then computed exactly with :class:`fractions.Fraction` (a float converts to a
Fraction without loss), so no decision is taken on a rounded number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from sla.errors import DataError


@dataclass(frozen=True)
class Counts:
    """Good and total events of one window; ``bad`` is what is left."""

    good: float
    total: float

    @property
    def bad(self) -> float:
        return self.total - self.good

    @property
    def is_idle(self) -> bool:
        """No events at all: the window has series but no traffic."""
        return self.total == 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(good=self.good + other.good, total=self.total + other.total)

    def scaled(self, weight: float) -> Counts:
        return Counts(good=self.good * weight, total=self.total * weight)

    @classmethod
    def of_good(cls, good: float, total: float, *, series: str = "") -> Counts:
        _check_count("good", good, series)
        _check_count("total", total, series)
        if good > total:
            raise DataError(f"good ({good:g}) exceeds total ({total:g})", series=series)
        return cls(good=good, total=total)

    @classmethod
    def of_bad(cls, bad: float, total: float, *, series: str = "") -> Counts:
        _check_count("bad", bad, series)
        _check_count("total", total, series)
        if bad > total:
            raise DataError(f"bad ({bad:g}) exceeds total ({total:g})", series=series)
        return cls(good=total - bad, total=total)


def _check_count(name: str, value: float, series: str) -> None:
    if math.isnan(value):
        raise DataError(f"{name} is NaN", series=series)
    if math.isinf(value):
        raise DataError(f"{name} is infinite ({value})", series=series)
    if value < 0:
        raise DataError(f"{name} is negative ({value:g})", series=series)


def total_of(windows: Iterable[Counts]) -> Counts:
    """Windows and chunks add their events; ratios are never averaged."""
    result = Counts(good=0.0, total=0.0)
    for counts in windows:
        result = result + counts
    return result


def error_ratio(counts: Counts) -> Fraction | None:
    """``bad / total``; None when there was no traffic, never 0 or a division error."""
    if counts.total == 0:
        return None
    return Fraction(counts.total - counts.good) / Fraction(counts.total)


def burn_rate(ratio: Fraction, *, allowed_bad_ratio: Fraction) -> Fraction:
    """How many times faster than sustainable the budget is spent: ``e / B``."""
    return ratio / allowed_bad_ratio
