"""The three budgeting methods on the same slices give their own, defined answers."""

from __future__ import annotations

from fractions import Fraction

from sla.budget.counts import Counts, error_ratio, total_of
from sla.budget.slices import ratio_timeslices_error, timeslices

# One slice with 1 bad in 2, one with 0 bad in 9,998.
SLICES = [Counts.of_bad(1, 2), Counts.of_bad(0, 9998)]


def test_occurrences_over_the_slices_is_one_in_ten_thousand() -> None:
    assert error_ratio(total_of(SLICES)) == Fraction(1, 10_000)


def test_ratio_timeslices_is_the_mean_of_slice_ratios() -> None:
    """Good ratios 1/2 and 1 average 3/4: an error ratio of 25 % by definition."""
    assert ratio_timeslices_error(SLICES) == Fraction(1, 4)


def test_timeslices_counts_slices_meeting_the_target() -> None:
    """At a 99 % slice target the first slice (50 %) fails and the second passes."""
    outcome = timeslices(SLICES, target=Fraction(99, 100))
    assert (outcome.good_slices, outcome.counted_slices) == (1, 2)
    assert outcome.error_ratio == Fraction(1, 2)


def test_slice_exactly_at_target_is_good() -> None:
    outcome = timeslices([Counts.of_bad(1, 100)], target=Fraction(99, 100))
    assert outcome.good_slices == 1


def test_slices_without_traffic_count_in_neither_method() -> None:
    idle = Counts.of_good(0, 0)
    slices = [idle, Counts.of_bad(1, 4), idle]
    assert timeslices(slices, target=Fraction(9, 10)).counted_slices == 1
    assert ratio_timeslices_error(slices) == Fraction(1, 4)


def test_all_idle_slices_are_no_data() -> None:
    idle = [Counts.of_good(0, 0)] * 3
    assert timeslices(idle, target=Fraction(1, 2)).error_ratio is None
    assert ratio_timeslices_error(idle) is None
