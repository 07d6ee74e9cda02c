"""Properties of the arithmetic that hold for every count (hypothesis)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from sla.budget.counts import Counts, burn_rate, error_ratio
from sla.budget.engine import Observation, evaluate
from sla.budget.windows import burn_rate_table

from .conftest import make_slo

AT = datetime(2026, 3, 1, tzinfo=UTC)
counts_strategy = st.integers(min_value=1, max_value=10**12).flatmap(
    lambda total: st.tuples(st.integers(min_value=0, max_value=total), st.just(total))
)
objectives = st.decimals(min_value="0.001", max_value="99.999", places=3)


def snapshot(objective: object, window: Counts | None):  # type: ignore[no-untyped-def]
    slo = make_slo(objective=str(objective))
    table = burn_rate_table(slo.spec)
    observation = Observation(
        window=window,
        burn_windows={w: window for w in table.windows},
        window_start=AT - timedelta(days=30),
        period_seconds=30 * 86400,
    )
    return evaluate(slo, table, observation, evaluated_at=AT)


@given(counts_strategy, objectives)
def test_remaining_is_one_minus_consumed(
    counts: tuple[int, int], objective: object
) -> None:
    bad, total = counts
    snap = snapshot(objective, Counts.of_bad(bad, total))
    consumed, remaining = snap.error_budget.consumed, snap.error_budget.remaining
    assert consumed is not None and remaining is not None
    assert math.isclose(remaining, 1 - consumed, rel_tol=1e-12, abs_tol=1e-12)


@given(counts_strategy, st.integers(min_value=1, max_value=50))
def test_burn_rate_scales_linearly_with_bad_events(
    counts: tuple[int, int], multiple: int
) -> None:
    bad, total = counts
    allowed = Fraction(1, 1000)
    base = error_ratio(Counts.of_bad(bad, total * multiple))
    scaled = error_ratio(Counts.of_bad(bad * multiple, total * multiple))
    assert base is not None and scaled is not None
    assert burn_rate(scaled, allowed_bad_ratio=allowed) == multiple * burn_rate(
        base, allowed_bad_ratio=allowed
    )


@given(objectives, st.booleans())
def test_window_without_traffic_never_yields_a_number(
    objective: object, absent: bool
) -> None:
    snap = snapshot(objective, None if absent else Counts.of_good(0, 0))
    assert snap.status == "no_data"
    assert snap.sli is None
    assert snap.error_budget.consumed is None
    assert snap.error_budget.remaining is None
    assert all(rate is None for rate in snap.burn_rates.values())


@given(
    st.floats(min_value=0, max_value=1e15, allow_nan=False),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    objectives,
)
def test_results_are_finite(total: float, bad_share: float, objective: object) -> None:
    snap = snapshot(objective, Counts.of_bad(total * bad_share, total))
    numbers = [snap.sli, snap.error_budget.consumed, snap.error_budget.remaining]
    numbers += list(snap.burn_rates.values())
    assert all(n is None or math.isfinite(n) for n in numbers)
