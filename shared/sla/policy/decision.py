"""Freeze decisions for one policy and scope: a state machine with hysteresis.

The machine keeps a :class:`PolicyMemory`: per selected SLO the newest snapshot
seen and how it read, the state computed from the snapshots, the state in force
(the computed one, unless a manual override says otherwise) and the sequence of
the last decision. :func:`decide` takes the memory and new snapshots and returns
the next memory with the action: freeze, lift, or none.

The rules:

- A freeze starts at the first snapshot that meets the freeze conditions
  (``combine: any``: one selected SLO breaches; ``all``: every one does).
- A freeze is lifted when recovery has held for ``holdFor``, measured on the
  snapshots' evaluation times, never the wall clock: an SLO has recovered when
  its remaining budget is above the lift level and no page alert fires, and it
  has held when its newest snapshot is ``holdFor`` or more after the first one
  of its current unbroken run of recovered snapshots. With ``combine: any``
  every selected SLO must have held; with ``all`` (the dual: the freeze needed
  them all) one is enough. A snapshot that is not recovered ends the run.
- No data (``onNoData: keep``) neither starts nor ends a freeze and ends a
  recovery run: recovery was not seen. ``freeze`` counts no data as a breach,
  ``lift`` as a recovery (which still has to hold for ``holdFor``). An SLO with
  no snapshot at all counts as no data with ``keep``, whatever the policy says:
  an SLO never evaluated is no evidence either way.
- Snapshots arrive in any order: one not newer than the newest seen for its SLO
  is ignored.
- An unexpired manual override wins over the computed state; the computed state
  keeps being tracked underneath and takes over when the override expires.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sla.model.base import UtcDatetime
from sla.model.durations import format_duration
from sla.model.policy import SLAPolicySpec
from sla.model.snapshot import BudgetSnapshot
from sla.policy.readings import SloReading, read_snapshot

FreezeStateName = Literal["frozen", "lifted"]
Action = Literal["freeze", "lift", "none"]


class SloMemory(BaseModel):
    """How the newest snapshot of one SLO read, and since when it has recovered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    evaluated_at: UtcDatetime
    has_data: bool
    breach: bool | None
    recovered: bool | None
    recovered_since: UtcDatetime | None = None
    reasons: list[str] = Field(default_factory=list)


class PolicyMemory(BaseModel):
    """What a policy's state machine remembers between decisions (JSON in the
    store's freeze state ``details``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: FreezeStateName = "lifted"
    computed: FreezeStateName = "lifted"
    sequence: int = 0
    slos: dict[str, SloMemory] = Field(default_factory=dict)


@dataclass(frozen=True)
class Override:
    """A manual override: ``force`` freezes, ``lift`` lifts, until ``expires_at``."""

    action: Literal["force", "lift"]
    expires_at: datetime
    reason: str
    actor: str

    def active(self, now: datetime) -> bool:
        return self.expires_at > now

    def describe(self) -> str:
        stamp = self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        verb = "forced a freeze" if self.action == "force" else "forced a lift"
        return f"manual override: {self.actor} {verb} until {stamp}: {self.reason}"


@dataclass(frozen=True)
class Decision:
    """The outcome of one decision.

    ``sequence`` grows by one for every decision that looked at new evidence;
    ``ignored`` lists snapshots older than those seen, which changed nothing.
    """

    action: Action
    state: FreezeStateName
    sequence: int
    decided_at: datetime
    reasons: tuple[str, ...]
    memory: PolicyMemory
    ignored: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.action != "none"


def decide(
    spec: SLAPolicySpec,
    *,
    memory: PolicyMemory,
    selected: Sequence[str],
    snapshots: Iterable[BudgetSnapshot],
    override: Override | None,
    now: datetime,
    known: Iterable[BudgetSnapshot] = (),
) -> Decision:
    """The next decision for ``selected`` SLOs given new ``snapshots``.

    ``known`` are the newest stored snapshots of the other selected SLOs: folded in
    when newer than those seen, and silently passed over otherwise, so only the
    snapshots that triggered the decision are reported as ignored.

    ``now`` is the decision time, used only to tell whether the override expired.
    When every snapshot is older than those seen and nothing changes, the decision
    is "none" and keeps the sequence: a late or repeated event leaves no trace but
    its audit row. Every other decision takes the next sequence.
    """
    slos, _ = absorb(spec, memory.slos, known)
    slos, ignored = absorb(spec, slos, snapshots)
    computed, computed_reasons = next_computed(spec, memory.computed, slos, selected)
    state, reasons = _with_override(computed, computed_reasons, override, now)
    action: Action = "none"
    if state != memory.state:
        action = "freeze" if state == "frozen" else "lift"
    nothing_new = slos == memory.slos and computed == memory.computed
    if ignored and nothing_new and action == "none":
        stale = tuple(ignored)
        return Decision("none", state, memory.sequence, now, stale, memory, stale)
    sequence = memory.sequence + 1
    new_memory = PolicyMemory(
        state=state, computed=computed, sequence=sequence, slos=slos
    )
    return Decision(action, state, sequence, now, reasons, new_memory, tuple(ignored))


def _with_override(
    computed: FreezeStateName,
    reasons: tuple[str, ...],
    override: Override | None,
    now: datetime,
) -> tuple[FreezeStateName, tuple[str, ...]]:
    if override is None or not override.active(now):
        return computed, reasons
    state: FreezeStateName = "frozen" if override.action == "force" else "lifted"
    return state, (override.describe(), *reasons)


def absorb(
    spec: SLAPolicySpec,
    slos: dict[str, SloMemory],
    snapshots: Iterable[BudgetSnapshot],
) -> tuple[dict[str, SloMemory], list[str]]:
    """Fold snapshots, oldest first, into the per-SLO memory; list those ignored."""
    merged = dict(slos)
    ignored: list[str] = []
    for snapshot in sorted(snapshots, key=lambda s: (s.evaluated_at, s.slo)):
        seen = merged.get(snapshot.slo)
        if seen is not None and snapshot.evaluated_at <= seen.evaluated_at:
            ignored.append(_stale_reason(snapshot, seen))
            continue
        merged[snapshot.slo] = _remember(read_snapshot(snapshot, spec), seen)
    return merged, ignored


def next_computed(
    spec: SLAPolicySpec,
    computed: FreezeStateName,
    slos: dict[str, SloMemory],
    selected: Sequence[str],
) -> tuple[FreezeStateName, tuple[str, ...]]:
    """The state the snapshots alone call for, with the reasons."""
    readings = [slos.get(name) for name in selected]
    breaching = _breaching(spec, readings)
    if computed == "lifted":
        if breaching:
            return "frozen", tuple(_breach_reasons(readings))
        return "lifted", _quiet_reasons(readings, "no freeze condition is met")
    if breaching:
        return "frozen", tuple(_breach_reasons(readings))
    if _recovery_held(spec, readings):
        return "lifted", tuple(_held_reasons(spec, readings))
    return "frozen", tuple(_waiting_reasons(spec, readings))


def _remember(reading: SloReading, seen: SloMemory | None) -> SloMemory:
    since = None
    if reading.recovered:
        continuing = seen is not None and seen.recovered and seen.recovered_since
        since = seen.recovered_since if continuing and seen else reading.evaluated_at
    return SloMemory(
        evaluated_at=reading.evaluated_at,
        has_data=reading.has_data,
        breach=reading.breach,
        recovered=reading.recovered,
        recovered_since=since,
        reasons=list(reading.reasons),
    )


def _breaching(spec: SLAPolicySpec, readings: list[SloMemory | None]) -> bool:
    if not readings:
        return False
    flags = [r is not None and bool(r.breach) for r in readings]
    return all(flags) if spec.combine == "all" else any(flags)


def _held(spec: SLAPolicySpec, reading: SloMemory | None) -> bool:
    if reading is None or not reading.recovered or reading.recovered_since is None:
        return False
    held_for = reading.evaluated_at - reading.recovered_since
    return held_for >= timedelta(seconds=spec.lift.hold_for)


def _recovery_held(spec: SLAPolicySpec, readings: list[SloMemory | None]) -> bool:
    if not readings:
        return False
    flags = [_held(spec, reading) for reading in readings]
    # The dual of the freeze rule: "all" froze only when every SLO breached, so
    # one SLO that has recovered for holdFor is enough to lift it.
    return any(flags) if spec.combine == "all" else all(flags)


def _breach_reasons(readings: list[SloMemory | None]) -> list[str]:
    return [
        reason
        for reading in readings
        if reading is not None and reading.breach
        for reason in reading.reasons
    ]


def _quiet_reasons(readings: list[SloMemory | None], summary: str) -> tuple[str, ...]:
    detail = [r.reasons[0] for r in readings if r is not None and r.reasons]
    return (summary, *detail)


def _held_reasons(spec: SLAPolicySpec, readings: list[SloMemory | None]) -> list[str]:
    hold = format_duration(spec.lift.hold_for)
    return [
        f"{reading.reasons[0]}, for {hold} or more (since {_stamp(reading)})"
        for reading in readings
        if reading is not None and _held(spec, reading) and reading.reasons
    ]


def _waiting_reasons(
    spec: SLAPolicySpec, readings: list[SloMemory | None]
) -> list[str]:
    hold = format_duration(spec.lift.hold_for)
    reasons = []
    for reading in readings:
        if reading is None:
            reasons.append("an SLO has no snapshot yet; the freeze is kept")
        elif reading.recovered and reading.recovered_since is not None:
            held = int((reading.evaluated_at - reading.recovered_since).total_seconds())
            reasons.append(
                f"{reading.reasons[0]}, for {format_duration(held)} of {hold}"
            )
        else:
            reasons.extend(reading.reasons)
    return reasons


def _stamp(reading: SloMemory) -> str:
    since = reading.recovered_since or reading.evaluated_at
    return since.strftime("%Y-%m-%dT%H:%M:%SZ")


def _stale_reason(snapshot: BudgetSnapshot, seen: SloMemory) -> str:
    at = snapshot.evaluated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    newest = seen.evaluated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{snapshot.slo}: snapshot of {at} is not newer than the one of {newest} "
        "already seen; it changes nothing"
    )
