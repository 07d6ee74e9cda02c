"""Counts are checked once; ratios are exact; events add, ratios never average."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from sla.budget.composite import combine
from sla.budget.counts import Counts, burn_rate, error_ratio, total_of
from sla.errors import DataError


def test_error_ratio_of_one_bad_in_a_thousand() -> None:
    assert error_ratio(Counts.of_bad(1, 1000)) == Fraction(1, 1000)


def test_zero_traffic_has_no_error_ratio() -> None:
    """total = 0 is no data: not 100 %, not 0 %, not a division error."""
    assert error_ratio(Counts.of_good(0, 0)) is None


def test_windows_add_events_not_ratios() -> None:
    """1 bad in 2 plus 0 bad in 9,998 is 1 in 10,000, not the mean of 50 % and 0 %."""
    combined = total_of([Counts.of_bad(1, 2), Counts.of_bad(0, 9998)])
    assert error_ratio(combined) == Fraction(1, 10_000)


def test_burn_rate_is_error_ratio_over_allowed_ratio() -> None:
    """1 % errors against a 99.9 % objective burn ten times too fast."""
    ratio = error_ratio(Counts.of_bad(10, 1000))
    assert ratio is not None
    assert burn_rate(ratio, allowed_bad_ratio=Fraction(1, 1000)) == 10


@pytest.mark.parametrize(
    ("good", "total", "message"),
    [
        (11.0, 10.0, r"good \(11\) exceeds total \(10\)"),
        (-1.0, 10.0, "good is negative"),
        (1.0, -10.0, "total is negative"),
        (math.nan, 10.0, "good is NaN"),
        (1.0, math.inf, "total is infinite"),
    ],
    ids=["good-above-total", "negative-good", "negative-total", "nan", "infinite"],
)
def test_impossible_counts_are_data_errors_naming_the_series(
    good: float, total: float, message: str
) -> None:
    series = 'http_requests_total{job="api"}'
    with pytest.raises(DataError, match=message) as caught:
        Counts.of_good(good, total, series=series)
    assert caught.value.series == series
    assert series in str(caught.value)


def test_bad_above_total_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"bad .* exceeds total"):
        Counts.of_bad(5, 4)


def test_composite_weights_events_not_percentages() -> None:
    """A (1 bad in 100, weight 1) and B (50 bad in 1,000, weight 2).

    good = 99 + 2 × 950 = 1999, total = 100 + 2 × 1000 = 2100, so the error ratio is
    101 / 2100; averaging the two percentages would give (1 % + 5 %) / 2 = 3 %.
    """
    combined = combine([(1.0, Counts.of_bad(1, 100)), (2.0, Counts.of_bad(50, 1000))])
    assert combined == Counts(good=1999.0, total=2100.0)
    assert error_ratio(combined) == Fraction(101, 2100)


def test_composite_of_absent_components_is_absent() -> None:
    assert combine([(1.0, None), (3.0, None)]) is None


def test_composite_ignores_an_absent_component() -> None:
    assert combine([(1.0, None), (3.0, Counts.of_bad(1, 10))]) == Counts(27.0, 30.0)
