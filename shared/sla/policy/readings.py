"""One SLO's snapshot read against one policy: does it breach, has it recovered?

Levels in a policy are Decimal percents taken exactly from the text the author
wrote; the remaining budget in a snapshot is a float fraction. They are compared
as decimals of the float's shortest repr (the text the snapshot travels as), times
100, which is exact: ``0.25`` is 25 %, not 24.999…, and nothing is rounded before
the comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sla.model.policy import FreezeCondition, SLAPolicySpec
from sla.model.snapshot import AlertState, BudgetSnapshot


@dataclass(frozen=True)
class SloReading:
    """A snapshot judged by a policy.

    ``breach`` and ``recovered`` are None when the snapshot has no data and the
    policy's ``onNoData`` is ``keep``: such a reading neither starts nor ends a
    freeze. ``reasons`` explain the breach, or else the (lack of) recovery.
    """

    slo: str
    evaluated_at: datetime
    has_data: bool
    breach: bool | None
    recovered: bool | None
    reasons: tuple[str, ...]


def remaining_percent(remaining: float) -> Decimal:
    """The remaining budget fraction as an exact percent (see the module docstring)."""
    return Decimal(repr(remaining)).scaleb(2)


def show_percent(value: Decimal) -> str:
    """A percent for people: ``25``, ``12.5``, ``-3.25`` — every digit kept."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def read_snapshot(snapshot: BudgetSnapshot, spec: SLAPolicySpec) -> SloReading:
    """Judge one snapshot by the policy's freeze conditions and lift rule."""
    remaining = snapshot.error_budget.remaining
    has_data = (
        snapshot.status != "no_data"
        and remaining is not None
        and math.isfinite(remaining)
    )
    if not has_data or remaining is None:
        return _no_data_reading(snapshot, spec)
    percent = remaining_percent(remaining)
    met = [_condition_reason(snapshot, c, percent) for c in spec.freeze.when]
    found = [reason for reason in met if reason is not None]
    breach = len(found) == len(met) if spec.freeze.match == "all" else bool(found)
    recovered, recovery_reason = _recovery(snapshot, spec, percent)
    reasons = tuple(found) if breach else (recovery_reason,)
    return SloReading(
        snapshot.slo, snapshot.evaluated_at, True, breach, recovered, reasons
    )


def firing_alerts(snapshot: BudgetSnapshot, severity: str) -> list[AlertState]:
    return [a for a in snapshot.alerts if a.severity == severity and a.firing]


def describe_alert(alert: AlertState) -> str:
    return (
        f"{alert.severity} alert {alert.long_window}/{alert.short_window} "
        f"(burn rate above {alert.factor:g} on both windows)"
    )


def _no_data_reading(snapshot: BudgetSnapshot, spec: SLAPolicySpec) -> SloReading:
    why = snapshot.reason or "no events in the window"
    on_no_data = spec.freeze.on_no_data
    if on_no_data == "freeze":
        reason = f"{snapshot.slo}: no data ({why}); onNoData is freeze"
        return SloReading(
            snapshot.slo, snapshot.evaluated_at, False, True, False, (reason,)
        )
    if on_no_data == "lift":
        reason = f"{snapshot.slo}: no data ({why}); onNoData is lift"
        return SloReading(
            snapshot.slo, snapshot.evaluated_at, False, False, True, (reason,)
        )
    reason = f"{snapshot.slo}: no data ({why}); onNoData is keep, nothing changes"
    return SloReading(snapshot.slo, snapshot.evaluated_at, False, None, None, (reason,))


def _condition_reason(
    snapshot: BudgetSnapshot, condition: FreezeCondition, percent: Decimal
) -> str | None:
    """Why the condition holds, or None when it does not."""
    level = condition.budget_remaining_below
    if level is not None:
        if percent < level:
            return (
                f"{snapshot.slo}: budget remaining {show_percent(percent)}% is "
                f"below the freeze level {show_percent(level)}%"
            )
        return None
    assert condition.alert_firing is not None
    firing = firing_alerts(snapshot, condition.alert_firing)
    if not firing:
        return None
    return f"{snapshot.slo}: {describe_alert(firing[0])} is firing"


def _recovery(
    snapshot: BudgetSnapshot, spec: SLAPolicySpec, percent: Decimal
) -> tuple[bool, str]:
    level = spec.lift.budget_remaining_above
    shown = f"budget remaining {show_percent(percent)}%"
    if percent <= level:
        return False, (
            f"{snapshot.slo}: {shown} is not above the lift level "
            f"{show_percent(level)}%"
        )
    pages = firing_alerts(snapshot, "page")
    if pages:
        return False, f"{snapshot.slo}: {describe_alert(pages[0])} is firing"
    return True, (
        f"{snapshot.slo}: {shown} is above the lift level {show_percent(level)}% "
        "and no page alert is firing"
    )
