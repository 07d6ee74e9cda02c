"""Snapshots of one SLO for policy tests: a remaining budget and alert rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sla.model.snapshot import AlertState, BudgetSnapshot, ErrorBudget, EventCounts

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
A, B = "shop/checkout", "shop/search"


def snap(
    slo: str,
    minute: int,
    remaining: float | None,
    *,
    page: bool = False,
    ticket: bool = False,
) -> BudgetSnapshot:
    """``slo`` at ``minute`` minutes after T0 with ``remaining`` of its budget (None:
    a no_data snapshot), its 1h/5m page and 1d/2h ticket rows firing as told."""
    status = "no_data" if remaining is None else "healthy"
    alerts = [
        AlertState(
            severity="page",
            long_window="1h",
            short_window="5m",
            factor=14.4,
            firing=page,
        ),
        AlertState(
            severity="ticket",
            long_window="1d",
            short_window="2h",
            factor=3,
            firing=ticket,
        ),
    ]
    return BudgetSnapshot(
        slo=slo,
        evaluated_at=T0 + timedelta(minutes=minute),
        objective=99.0,
        window="30d",
        status=status,
        sli=None,
        events=EventCounts(good=0, bad=0, total=0),
        error_budget=ErrorBudget(
            consumed=None if remaining is None else 1 - remaining, remaining=remaining
        ),
        alerts=alerts,
    )
