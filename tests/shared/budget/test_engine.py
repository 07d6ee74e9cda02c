"""Snapshots from counts: budget figures, statuses in order, time to exhaustion."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sla.budget.counts import Counts
from sla.budget.engine import Observation, evaluate
from sla.budget.windows import BurnRateTable, burn_rate_table
from sla.model.slo import SLODefinition

from .conftest import make_slo

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
M, H, D = 60, 3600, 86400
QUIET = Counts.of_bad(0, 1000)


def observe(
    slo: SLODefinition,
    window: Counts | None,
    burn: dict[int, Counts | None] | None = None,
    **extra: object,
) -> tuple[BurnRateTable, Observation]:
    table = burn_rate_table(slo.spec)
    windows: dict[int, Counts | None] = {w: QUIET for w in table.windows}
    windows.update(burn or {})
    observation = Observation(
        window=window,
        burn_windows=windows,
        window_start=AT - timedelta(days=30),
        period_seconds=30 * D,
        **extra,  # type: ignore[arg-type]
    )
    return table, observation


def snapshot_of(slo: SLODefinition, window: Counts | None, **kwargs: object):  # type: ignore[no-untyped-def]
    table, observation = observe(slo, window, **kwargs)  # type: ignore[arg-type]
    return evaluate(slo, table, observation, evaluated_at=AT)


def test_healthy_budget_figures() -> None:
    """99.9 %: 100 bad in 1,000,000 is e = 1e-4, a tenth of the budget consumed."""
    snap = snapshot_of(make_slo(), Counts.of_bad(100, 1_000_000))
    assert snap.status == "healthy"
    assert snap.sli == 1 - 100 / 1_000_000
    assert snap.error_budget.consumed == float(
        Fraction(100, 1_000_000) / Fraction(1, 1000)
    )
    assert snap.error_budget.remaining == float(1 - Fraction(1, 10))
    assert snap.events.model_dump() == {"good": 999_900.0, "bad": 100.0, "total": 1e6}
    assert snap.burn_rates["30d"] == float(Fraction(1, 10))


def test_budget_spent_to_the_last_event_is_exhausted() -> None:
    """1,000 bad in 1,000,000 at 99.9 % is exactly the budget: remaining 0, exhausted.

    In floats 1 − 0.999 is 0.0010000000000000009 and the remaining would be a hair
    above zero; the engine decides on exact fractions.
    """
    snap = snapshot_of(make_slo(), Counts.of_bad(1000, 1_000_000))
    assert snap.error_budget.remaining == 0
    assert snap.status == "exhausted"


def test_overspent_budget_goes_negative() -> None:
    snap = snapshot_of(make_slo(), Counts.of_bad(3000, 1_000_000))
    assert snap.error_budget.remaining == 1 - 3
    assert snap.status == "exhausted"
    assert snap.exhaustion_eta is None


def test_page_row_firing_is_critical() -> None:
    """2 % errors burn at 20 over both 1h and 5m, above the 14.4 factor."""
    burning = Counts.of_bad(20, 1000)
    snap = snapshot_of(
        make_slo(), Counts.of_bad(500, 1_000_000), burn={H: burning, 5 * M: burning}
    )
    assert snap.status == "critical"
    page = snap.alerts[0]
    assert (page.severity, page.long_window, page.short_window) == ("page", "1h", "5m")
    assert page.firing is True
    assert page.long_burn_rate == 20.0


def test_row_needs_both_windows_above_the_factor() -> None:
    """The long window burns at 20 but the short one has recovered: no page."""
    snap = snapshot_of(
        make_slo(),
        Counts.of_bad(500, 1_000_000),
        burn={H: Counts.of_bad(20, 1000), 5 * M: Counts.of_bad(1, 1000)},
    )
    assert snap.alerts[0].firing is False
    assert snap.status == "healthy"


def test_burn_exactly_at_the_factor_does_not_fire() -> None:
    """6 ‰ errors over 6h and 30m burn at exactly the factor 6: not above it."""
    at_factor = Counts.of_bad(6, 1000)
    snap = snapshot_of(
        make_slo(),
        Counts.of_bad(1, 1_000_000),
        burn={6 * H: at_factor, 30 * M: at_factor},
    )
    assert snap.alerts[1].factor == 6.0
    assert snap.alerts[1].firing is False


def test_ticket_row_firing_is_warning() -> None:
    """4 ‰ errors: a burn of 4 over 1d and 2h exceeds the ticket factor 3."""
    ticket = Counts.of_bad(4, 1000)
    snap = snapshot_of(
        make_slo(), Counts.of_bad(10, 1_000_000), burn={D: ticket, 2 * H: ticket}
    )
    assert snap.status == "warning"
    assert [a.firing for a in snap.alerts] == [False, False, True, False]


def test_low_remaining_is_warning_and_the_level_itself_is_not() -> None:
    """warningBelow 25: remaining 20 % warns; remaining exactly 25 % does not."""
    low = snapshot_of(make_slo(), Counts.of_bad(800, 1_000_000))
    assert low.error_budget.remaining == float(1 - Fraction(8, 10))
    assert low.status == "warning"
    level = snapshot_of(make_slo(), Counts.of_bad(750, 1_000_000))
    assert level.error_budget.remaining == 0.25
    assert level.status == "healthy"


def test_exhausted_wins_over_critical() -> None:
    burning = Counts.of_bad(20, 1000)
    snap = snapshot_of(
        make_slo(), Counts.of_bad(2000, 1_000_000), burn={H: burning, 5 * M: burning}
    )
    assert snap.status == "exhausted"


def test_absent_series_are_no_data_with_reason() -> None:
    snap = snapshot_of(make_slo(), None)
    assert snap.status == "no_data"
    assert snap.sli is None
    assert snap.error_budget.remaining is None
    assert snap.reason is not None and snap.reason.startswith("absent")


def test_idle_window_is_no_data_told_apart_from_absent() -> None:
    snap = snapshot_of(make_slo(), Counts.of_good(0, 0))
    assert snap.status == "no_data"
    assert snap.reason is not None and snap.reason.startswith("idle")


def test_failed_measurement_is_no_data_with_its_reason() -> None:
    reason = "query rejected: parse error at char 5"
    snap = snapshot_of(make_slo(), Counts.of_bad(1, 10), failure=reason)
    assert snap.status == "no_data"
    assert snap.reason == reason
    assert all(rate is None for rate in snap.burn_rates.values())


def test_exhaustion_eta_at_the_current_burn() -> None:
    """Remaining 0.5 of a 30-day budget at a burn of 2 (over 1h) lasts 7.5 days."""
    burn_two = Counts.of_bad(2, 1000)
    snap = snapshot_of(make_slo(), Counts.of_bad(500, 1_000_000), burn={H: burn_two})
    assert snap.exhaustion_eta == AT + timedelta(seconds=0.5 * 30 * D / 2)


def test_no_errors_means_no_exhaustion_eta() -> None:
    snap = snapshot_of(make_slo(), Counts.of_bad(0, 1000))
    assert snap.error_budget.remaining == 1.0
    assert snap.exhaustion_eta is None


def test_timeslices_budget_from_slices() -> None:
    """Four 5m slices at a 95 % slice target: one fails, so e = 1/4 and consumed 250."""
    slo = make_slo(
        budgetingMethod="Timeslices", timeslice={"length": "5m", "target": 95}
    )
    slices = [
        Counts.of_bad(0, 100),
        Counts.of_bad(10, 100),
        Counts.of_bad(5, 100),
        Counts.of_good(0, 0),
        Counts.of_bad(1, 100),
    ]
    snap = snapshot_of(slo, Counts.of_bad(16, 400), slices=slices)
    assert snap.sli == 0.75
    assert snap.error_budget.consumed == float(Fraction(1, 4) / Fraction(1, 1000))
    assert snap.status == "exhausted"


def test_json_output_has_the_design_fields() -> None:
    snap = snapshot_of(make_slo(), Counts.of_bad(100, 1_000_000))
    document = json.loads(snap.model_dump_json())
    for name in (
        "slo",
        "evaluated_at",
        "objective",
        "window",
        "status",
        "sli",
        "events",
        "error_budget",
        "burn_rates",
        "alerts",
        "exhaustion_eta",
    ):
        assert name in document
    assert document["slo"] == "shop/checkout-availability"
    assert document["evaluated_at"] == "2026-03-01T12:00:00Z"
    assert document["objective"] == 99.9
    assert document["alerts"][0]["long_window"] == "1h"
    assert set(document["burn_rates"]) == {
        "5m",
        "30m",
        "1h",
        "2h",
        "6h",
        "1d",
        "3d",
        "30d",
    }
