"""Freeze decisions over snapshot sequences: hysteresis, no data, order, overrides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from sla.model.policy import SLAPolicySpec
from sla.model.snapshot import BudgetSnapshot
from sla.policy.decision import Decision, Override, PolicyMemory, decide
from tests.support.policy_snapshots import T0, A, B, snap


def spec(**changes: Any) -> SLAPolicySpec:
    """Freeze below 20 %, lift above 50 % held for 30m, unless changed."""
    document: dict[str, Any] = {
        "slos": {"names": ["checkout", "search"]},
        "freeze": {"when": [{"budgetRemainingBelow": 20}]},
        "lift": {"budgetRemainingAbove": 50, "holdFor": "30m"},
    }
    for key, value in changes.items():
        document[key] = value
    return SLAPolicySpec.model_validate(document)


@dataclass
class Run:
    decisions: list[Decision]

    @property
    def actions(self) -> list[str]:
        return [d.action for d in self.decisions]


def run(
    policy: SLAPolicySpec,
    snapshots: Sequence[BudgetSnapshot],
    *,
    selected: Sequence[str] = (A,),
    override: Override | None = None,
    now: datetime = T0,
) -> Run:
    memory = PolicyMemory()
    decisions = []
    for snapshot in snapshots:
        decision = decide(
            policy,
            memory=memory,
            selected=selected,
            snapshots=[snapshot],
            override=override,
            now=now,
        )
        decisions.append(decision)
        memory = decision.memory
    return Run(decisions)


def test_exhaustion_freezes_at_once() -> None:
    result = run(spec(), [snap(A, 0, 0.5), snap(A, 1, 0.0)])
    assert result.actions == ["none", "freeze"]
    assert result.decisions[1].reasons == (
        "shop/checkout: budget remaining 0% is below the freeze level 20%",
    )


def test_remaining_at_exactly_the_level_is_not_below_it() -> None:
    # 0.2 × 100 is 20 exactly when read from the float's text; 20 < 20 is false.
    assert run(spec(), [snap(A, 0, 0.2)]).actions == ["none"]
    assert run(spec(), [snap(A, 0, 0.19999999999999996)]).actions == ["freeze"]


def test_recovery_held_for_less_than_hold_for_does_not_lift() -> None:
    # Recovered from minute 10; 10 → 39 is 29 minutes, less than 30m.
    snapshots = [snap(A, 0, 0.1), *(snap(A, m, 0.8) for m in range(10, 40))]
    result = run(spec(), snapshots)
    assert result.actions.count("freeze") == 1
    assert "lift" not in result.actions
    assert result.decisions[-1].reasons == (
        "shop/checkout: budget remaining 80% is above the lift level 50% and no "
        "page alert is firing, for 29m of 30m",
    )


def test_recovery_held_for_hold_for_lifts() -> None:
    snapshots = [snap(A, 0, 0.1), snap(A, 10, 0.8), snap(A, 25, 0.8), snap(A, 40, 0.8)]
    assert run(spec(), snapshots).actions == ["freeze", "none", "none", "lift"]


def test_flapping_around_the_level_freezes_once_and_lifts_once() -> None:
    # 19 %, 21 %, 19 %, 45 % …: between the levels nothing changes; then 60 % from
    # minute 10, held to minute 40.
    values = [0.19, 0.21, 0.19, 0.45, 0.19, 0.49, 0.21]
    flapping = [snap(A, m, v) for m, v in enumerate(values)]
    recovery = [snap(A, m, 0.6) for m in range(10, 41, 5)]
    result = run(spec(), flapping + recovery)
    assert result.actions.count("freeze") == 1
    assert result.actions.count("lift") == 1
    assert result.actions[-1] == "lift"


def test_a_page_alert_breaks_the_recovery_run() -> None:
    snapshots = [
        snap(A, 0, 0.1),
        snap(A, 10, 0.8),
        snap(A, 20, 0.8, page=True),
        snap(A, 30, 0.8),
        snap(A, 45, 0.8),
        snap(A, 60, 0.8),
    ]
    # The run restarts at minute 30; 30 → 60 is the first 30 minutes held.
    assert run(spec(), snapshots).actions == [
        "freeze",
        "none",
        "none",
        "none",
        "none",
        "lift",
    ]


@pytest.mark.parametrize(
    ("on_no_data", "expected"),
    [
        pytest.param("keep", ["none", "none"], id="keep-never-freezes"),
        pytest.param("freeze", ["none", "freeze"], id="freeze-freezes"),
        pytest.param("lift", ["none", "none"], id="lift-does-not-freeze"),
    ],
)
def test_no_data_starts_a_freeze_only_when_told(
    on_no_data: str, expected: list[str]
) -> None:
    policy = spec(
        freeze={"when": [{"budgetRemainingBelow": 20}], "onNoData": on_no_data}
    )
    assert run(policy, [snap(A, 0, 0.9), snap(A, 1, None)]).actions == expected


@pytest.mark.parametrize(
    ("on_no_data", "expected"),
    [
        pytest.param("keep", "none", id="keep-holds-the-freeze"),
        pytest.param("freeze", "none", id="freeze-holds-the-freeze"),
        pytest.param("lift", "lift", id="lift-lifts-after-hold-for"),
    ],
)
def test_no_data_lifts_a_freeze_only_when_told(on_no_data: str, expected: str) -> None:
    policy = spec(
        freeze={"when": [{"budgetRemainingBelow": 20}], "onNoData": on_no_data}
    )
    snapshots = [snap(A, 0, 0.1), snap(A, 10, None), snap(A, 40, None)]
    assert run(policy, snapshots).actions[-1] == expected


def test_an_older_snapshot_changes_nothing() -> None:
    result = run(spec(), [snap(A, 10, 0.9), snap(A, 5, 0.0)])
    late = result.decisions[1]
    assert late.action == "none"
    assert late.sequence == result.decisions[0].sequence == 1
    assert late.reasons == (
        "shop/checkout: snapshot of 2026-03-02T10:05:00Z is not newer than the one "
        "of 2026-03-02T10:10:00Z already seen; it changes nothing",
    )


def test_a_duplicate_snapshot_changes_nothing_and_keeps_the_sequence() -> None:
    result = run(spec(), [snap(A, 0, 0.1), snap(A, 0, 0.1), snap(A, 1, 0.1)])
    assert result.actions == ["freeze", "none", "none"]
    assert [d.sequence for d in result.decisions] == [1, 1, 2]


def test_sequences_increase_with_every_decision() -> None:
    result = run(spec(), [snap(A, m, 0.9) for m in range(4)])
    assert [d.sequence for d in result.decisions] == [1, 2, 3, 4]


def test_a_forced_freeze_wins_until_it_expires() -> None:
    force = Override("force", T0 + timedelta(hours=1), "incident 42", "alice")
    during = run(spec(), [snap(A, 0, 0.9)], override=force, now=T0)
    assert during.actions == ["freeze"]
    assert during.decisions[0].reasons[0] == (
        "manual override: alice forced a freeze until 2026-03-02T11:00:00Z: incident 42"
    )
    memory = during.decisions[0].memory
    after = decide(
        spec(),
        memory=memory,
        selected=[A],
        snapshots=[snap(A, 61, 0.9)],
        override=force,
        now=T0 + timedelta(minutes=61),
    )
    assert after.action == "lift"


def test_a_forced_lift_wins_over_an_exhausted_budget() -> None:
    lift = Override("lift", T0 + timedelta(hours=1), "hotfix", "bob")
    assert run(spec(), [snap(A, 0, 0.0)], override=lift).actions == ["none"]


def test_alert_firing_condition_freezes_on_a_ticket_row() -> None:
    policy = spec(freeze={"when": [{"alertFiring": "ticket"}]})
    result = run(policy, [snap(A, 0, 0.9), snap(A, 1, 0.9, ticket=True)])
    assert result.actions == ["none", "freeze"]
    assert result.decisions[1].reasons == (
        "shop/checkout: ticket alert 1d/2h (burn rate above 3 on both windows) "
        "is firing",
    )


@pytest.mark.parametrize(
    ("match", "page", "remaining", "expected"),
    [
        pytest.param("any", True, 0.9, "freeze", id="any-alert-alone"),
        pytest.param("any", False, 0.1, "freeze", id="any-budget-alone"),
        pytest.param("all", True, 0.9, "none", id="all-alert-alone"),
        pytest.param("all", True, 0.1, "freeze", id="all-both"),
    ],
)
def test_conditions_combine_any_or_all(
    match: str, page: bool, remaining: float, expected: str
) -> None:
    when = [{"budgetRemainingBelow": 20}, {"alertFiring": "page"}]
    policy = spec(freeze={"when": when, "match": match})
    assert run(policy, [snap(A, 0, remaining, page=page)]).actions == [expected]


def test_combine_any_freezes_on_one_slo_and_lifts_when_all_recovered() -> None:
    policy = spec()
    memory = PolicyMemory()
    steps = [
        [snap(A, 0, 0.1), snap(B, 0, 0.9)],
        [snap(A, 40, 0.9), snap(B, 40, 0.9)],
        [snap(A, 70, 0.9), snap(B, 70, 0.3)],
        [snap(A, 80, 0.9), snap(B, 80, 0.9)],
        [snap(A, 110, 0.9), snap(B, 110, 0.9)],
    ]
    actions = []
    for batch in steps:
        decision = decide(
            policy,
            memory=memory,
            selected=[A, B],
            snapshots=batch,
            override=None,
            now=T0,
        )
        actions.append(decision.action)
        memory = decision.memory
    # B at 30 % (minute 70) is not above the lift level: its run restarts at 80.
    assert actions == ["freeze", "none", "none", "none", "lift"]


def test_combine_all_needs_every_slo_to_breach() -> None:
    policy = spec(combine="all")
    one = decide(
        policy,
        memory=PolicyMemory(),
        selected=[A, B],
        snapshots=[snap(A, 0, 0.1), snap(B, 0, 0.9)],
        override=None,
        now=T0,
    )
    both = decide(
        policy,
        memory=one.memory,
        selected=[A, B],
        snapshots=[snap(A, 1, 0.1), snap(B, 1, 0.1)],
        override=None,
        now=T0,
    )
    assert (one.action, both.action) == ("none", "freeze")


def test_an_slo_never_evaluated_blocks_combine_all() -> None:
    policy = spec(combine="all")
    decision = decide(
        policy,
        memory=PolicyMemory(),
        selected=[A, B],
        snapshots=[snap(A, 0, 0.0)],
        override=None,
        now=T0,
    )
    assert decision.action == "none"
