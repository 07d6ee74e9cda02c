"""Budget snapshots for tests of code that stores or caches them."""

from __future__ import annotations

from datetime import datetime

from sla.model.snapshot import BudgetSnapshot, ErrorBudget, EventCounts


def budget_snapshot(
    slo: str,
    evaluated_at: datetime,
    *,
    good: float = 999.0,
    total: float = 1000.0,
    objective: float = 99.0,
) -> BudgetSnapshot:
    """A snapshot with its figures worked out from good and total, for store tests.

    With the defaults: e = 1/1000, B = 1/100, consumed = e/B = 0.1, remaining 0.9.
    """
    bad = total - good
    allowed_bad = (100 - objective) / 100
    consumed = (bad / total) / allowed_bad
    return BudgetSnapshot(
        slo=slo,
        evaluated_at=evaluated_at,
        objective=objective,
        window="30d",
        status="healthy",
        sli=good / total,
        events=EventCounts(good=good, bad=bad, total=total),
        error_budget=ErrorBudget(consumed=consumed, remaining=1 - consumed),
        burn_rates={"1h": consumed},
    )
