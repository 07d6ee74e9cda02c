"""When an SLO is reported violated: it enters ``exhausted``, or a page row starts.

The rule compares a snapshot with the SLO's previous one by evaluation time, not
by arrival, so the answer does not depend on the order events come in; a snapshot
with no predecessor counts as entering whatever it shows.
"""

from __future__ import annotations

from sla.model.freeze import SloViolatedData
from sla.model.snapshot import BudgetSnapshot
from sla.policy.readings import describe_alert, firing_alerts


def violation(
    snapshot: BudgetSnapshot, previous: BudgetSnapshot | None
) -> SloViolatedData | None:
    """The violation ``snapshot`` starts, or None when it starts none."""
    reasons: list[str] = []
    was_exhausted = previous is not None and previous.status == "exhausted"
    if snapshot.status == "exhausted" and not was_exhausted:
        remaining = snapshot.error_budget.remaining
        shown = "" if remaining is None else f" (remaining {remaining:g})"
        reasons.append(f"{snapshot.slo}: the error budget is exhausted{shown}")
    pages = firing_alerts(snapshot, "page")
    before = {
        (a.severity, a.long_window, a.short_window)
        for a in (firing_alerts(previous, "page") if previous is not None else [])
    }
    started = [
        a for a in pages if (a.severity, a.long_window, a.short_window) not in before
    ]
    reasons += [f"{snapshot.slo}: {describe_alert(a)} started firing" for a in started]
    if not reasons:
        return None
    return SloViolatedData(
        slo=snapshot.slo,
        evaluated_at=snapshot.evaluated_at,
        status=snapshot.status,
        firing=pages,
        reason="; ".join(reasons),
    )


def violation_id(snapshot: BudgetSnapshot) -> str:
    """One violation per SLO and evaluation time, whichever policy saw it."""
    return f"violated:{snapshot.snapshot_id}"
