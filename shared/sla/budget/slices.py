"""Budgeting by timeslices, as OpenSLO defines the two methods.

``Timeslices``: a slice is good when its own good ratio reaches the slice target;
the SLI is good slices over slices with traffic. ``RatioTimeslices``: the SLI is the
mean of the slices' good ratios. Slices without traffic count in neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from sla.budget.counts import Counts


@dataclass(frozen=True)
class SliceOutcome:
    good_slices: int
    counted_slices: int

    @property
    def error_ratio(self) -> Fraction | None:
        if self.counted_slices == 0:
            return None
        return Fraction(self.counted_slices - self.good_slices, self.counted_slices)


def timeslices(slices: Sequence[Counts], *, target: Fraction) -> SliceOutcome:
    counted = [s for s in slices if s.total > 0]
    good = sum(1 for s in counted if Fraction(s.good) / Fraction(s.total) >= target)
    return SliceOutcome(good_slices=good, counted_slices=len(counted))


def ratio_timeslices_error(slices: Sequence[Counts]) -> Fraction | None:
    """``1 −`` the mean of the slices' good ratios; None when no slice had traffic."""
    ratios = [Fraction(s.good) / Fraction(s.total) for s in slices if s.total > 0]
    if not ratios:
        return None
    return 1 - sum(ratios, Fraction(0)) / len(ratios)
