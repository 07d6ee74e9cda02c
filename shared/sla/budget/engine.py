"""From measured counts to a budget snapshot: the design's arithmetic and statuses.

For objective ``t`` the allowed bad ratio is ``B = 1 − t``. With error ratio ``e``:
burn rate and budget consumed are ``e / B``, remaining is ``1 − consumed`` (it may
go below zero), and time to exhaustion is ``remaining × window / current burn``.
Everything up to the status is exact (fractions); floats appear only in the output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from sla.budget.counts import Counts, burn_rate, error_ratio
from sla.budget.slices import ratio_timeslices_error, timeslices
from sla.budget.windows import BurnRateTable, BurnRateWindow
from sla.model.durations import format_duration
from sla.model.slo import SLODefinition
from sla.model.snapshot import (
    AlertState,
    BudgetSnapshot,
    ErrorBudget,
    EventCounts,
    Status,
)


@dataclass(frozen=True)
class Observation:
    """What was measured for one SLO at one evaluation time.

    ``window`` holds the SLO window's events, None when no series exists at all
    (absent, told apart from idle: counts with ``total == 0``). ``slices`` holds the
    per-slice counts for the timeslice methods. ``burn_windows`` maps each window of
    the burn-rate table, in seconds, to its events. ``failure`` says why nothing
    could be measured (a rejected query, a data error).
    """

    window: Counts | None
    burn_windows: Mapping[int, Counts | None]
    window_start: datetime
    period_seconds: int
    slices: Sequence[Counts] | None = None
    notes: Sequence[str] = field(default=())
    failure: str | None = None


@dataclass(frozen=True)
class Budget:
    """The exact figures a status and a policy decide on."""

    error_ratio: Fraction | None
    consumed: Fraction | None
    remaining: Fraction | None
    burn_rates: Mapping[int, Fraction | None]
    firing: tuple[BurnRateWindow, ...]


def window_error_ratio(slo: SLODefinition, observation: Observation) -> Fraction | None:
    """The SLO window's error ratio under the SLO's budgeting method."""
    spec = slo.spec
    if observation.failure is not None or observation.window is None:
        return None
    if spec.budgeting_method == "Occurrences" or observation.slices is None:
        return error_ratio(observation.window)
    if spec.budgeting_method == "RatioTimeslices":
        return ratio_timeslices_error(observation.slices)
    assert spec.timeslice is not None and spec.timeslice.target is not None
    target = Fraction(spec.timeslice.target) / 100
    return timeslices(observation.slices, target=target).error_ratio


def compute_budget(
    slo: SLODefinition, table: BurnRateTable, observation: Observation
) -> Budget:
    allowed = slo.spec.allowed_bad_ratio
    ratio = window_error_ratio(slo, observation)
    consumed = None if ratio is None else burn_rate(ratio, allowed_bad_ratio=allowed)
    rates: dict[int, Fraction | None] = {}
    for seconds, counts in observation.burn_windows.items():
        window_ratio = None if counts is None else error_ratio(counts)
        rates[seconds] = (
            None
            if window_ratio is None or observation.failure
            else burn_rate(window_ratio, allowed_bad_ratio=allowed)
        )
    firing = tuple(row for row in table.rows if _row_fires(row, rates))
    return Budget(
        error_ratio=ratio,
        consumed=consumed,
        remaining=None if consumed is None else 1 - consumed,
        burn_rates=rates,
        firing=firing,
    )


def _row_fires(row: BurnRateWindow, rates: Mapping[int, Fraction | None]) -> bool:
    """Both windows burn faster than the factor; a window without data never fires."""
    long, short = rates.get(row.long_window), rates.get(row.short_window)
    return (
        long is not None
        and short is not None
        and long > row.factor
        and short > row.factor
    )


def status_of(slo: SLODefinition, budget: Budget) -> Status:
    """First match wins: no_data, exhausted, critical, warning, healthy."""
    if budget.remaining is None:
        return "no_data"
    if budget.remaining <= 0:
        return "exhausted"
    if any(row.severity == "page" for row in budget.firing):
        return "critical"
    warning_level = Fraction(slo.spec.warning_below) / 100
    if any(row.severity == "ticket" for row in budget.firing):
        return "warning"
    if budget.remaining < warning_level:
        return "warning"
    return "healthy"


def current_burn(table: BurnRateTable, budget: Budget) -> Fraction | None:
    """The burn over the table's shortest long window: the budget's pace right now."""
    if not table.rows:
        return None
    shortest = min(row.long_window for row in table.rows)
    return budget.burn_rates.get(shortest)


def exhaustion_eta(
    *,
    evaluated_at: datetime,
    period_seconds: int,
    remaining: Fraction | None,
    burn: Fraction | None,
) -> datetime | None:
    """``remaining × window / burn`` from now; None when spent, idle or not burning."""
    if remaining is None or remaining <= 0 or burn is None or burn <= 0:
        return None
    seconds = remaining * period_seconds / burn
    # Beyond datetime's range the budget will not run out in any useful sense.
    if seconds > Fraction(100 * 365 * 86400):
        return None
    return evaluated_at + timedelta(seconds=float(seconds))


def evaluate(
    slo: SLODefinition,
    table: BurnRateTable,
    observation: Observation,
    *,
    evaluated_at: datetime,
) -> BudgetSnapshot:
    budget = compute_budget(slo, table, observation)
    status = status_of(slo, budget)
    counts = observation.window or Counts(good=0.0, total=0.0)
    eta = exhaustion_eta(
        evaluated_at=evaluated_at,
        period_seconds=observation.period_seconds,
        remaining=budget.remaining,
        burn=current_burn(table, budget) if table.rows else budget.consumed,
    )
    burn_rates = {
        format_duration(seconds): _as_float(rate)
        for seconds, rate in sorted(budget.burn_rates.items())
    }
    burn_rates[str(slo.spec.window)] = _as_float(budget.consumed)
    return BudgetSnapshot(
        slo=slo.key,
        evaluated_at=evaluated_at,
        objective=float(slo.spec.objective),
        window=str(slo.spec.window),
        budgeting_method=slo.spec.budgeting_method,
        status=status,
        sli=None if budget.error_ratio is None else float(1 - budget.error_ratio),
        events=EventCounts(good=counts.good, bad=counts.bad, total=counts.total),
        error_budget=ErrorBudget(
            consumed=_as_float(budget.consumed), remaining=_as_float(budget.remaining)
        ),
        burn_rates=burn_rates,
        alerts=[_alert_state(row, budget) for row in table.rows],
        exhaustion_eta=eta,
        window_start=observation.window_start,
        reason=_reason(observation, status),
        notes=[*table.notes, *observation.notes],
    )


def _alert_state(row: BurnRateWindow, budget: Budget) -> AlertState:
    return AlertState(
        severity=row.severity,
        long_window=format_duration(row.long_window),
        short_window=format_duration(row.short_window),
        factor=float(row.factor),
        firing=row in budget.firing,
        long_burn_rate=_as_float(budget.burn_rates.get(row.long_window)),
        short_burn_rate=_as_float(budget.burn_rates.get(row.short_window)),
    )


def _reason(observation: Observation, status: Status) -> str | None:
    if observation.failure is not None:
        return observation.failure
    if status != "no_data":
        return None
    if observation.window is None:
        return "absent: no series matched the indicator in the window"
    return "idle: no events in the window"


def _as_float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)
