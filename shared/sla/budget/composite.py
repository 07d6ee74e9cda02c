"""Composite SLOs: the weighted sums of their components' events, window by window."""

from __future__ import annotations

from collections.abc import Sequence

from sla.budget.counts import Counts, total_of


def combine(components: Sequence[tuple[float, Counts | None]]) -> Counts | None:
    """Good and total are ``Σ weight × component``; None when every part is absent.

    Percentages are never averaged: a component with ten times the traffic weighs
    ten times as much at the same weight.
    """
    present = [counts.scaled(weight) for weight, counts in components if counts]
    if not present:
        return None
    return total_of(present)
