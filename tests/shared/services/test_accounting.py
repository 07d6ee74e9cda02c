"""Chunk plans: a window is its left edge, the settled chunks and its right edge."""

from __future__ import annotations

from sla.services.accounting import (
    chunk_starts,
    contiguous_runs,
    plan_window,
    settled_until,
)

H, M, D = 3600, 60, 86400
# 2026-01-10 12:30:00 UTC, on the minute grid and half-way through an hour.
T = 1_768_048_200


def test_settled_until_waits_for_the_settle_delay() -> None:
    """At 12:30 the 11:00–12:00 chunk has settled (5 min after 12:00)."""
    assert settled_until(T, chunk=H, settle=5 * M) == T - 30 * M
    # At 12:03 it has not: the newest settled chunk ends at 11:00.
    assert settled_until(T - 27 * M, chunk=H, settle=5 * M) == T - 90 * M


def test_thirty_day_window_splits_into_edges_and_chunks() -> None:
    plan = plan_window(T, 30 * D, chunk=H, settle=5 * M)
    assert not plan.direct
    assert plan.left_edge == 30 * M  # from 12:30 thirty days ago to 13:00
    assert plan.right_edge == 30 * M  # from 12:00 today to 12:30
    chunks = (plan.chunk_to - plan.chunk_from) // H
    assert plan.left_edge + chunks * H + plan.right_edge == 30 * D
    assert chunks == 30 * 24 - 1


def test_windows_up_to_a_chunk_are_asked_directly() -> None:
    for seconds in (5 * M, 30 * M, H):
        assert plan_window(T, seconds, chunk=H, settle=5 * M).direct


def test_window_without_a_settled_chunk_is_direct() -> None:
    """At 12:03 a 90-minute window (10:33–12:03) holds no chunk settled by then."""
    assert plan_window(T - 27 * M, 90 * M, chunk=H, settle=5 * M).direct


def test_window_starting_on_a_boundary_has_no_left_edge() -> None:
    plan = plan_window(T - 30 * M, 2 * D, chunk=H, settle=5 * M)  # ends at 12:00
    assert plan.left_edge == 0
    # 12:00 − 5 min settles only up to 11:00: the last hour is the right edge.
    assert plan.right_edge == H


def test_chunk_starts_are_shared_between_windows() -> None:
    plans = [plan_window(T, w, chunk=H, settle=5 * M) for w in (6 * H, D, 3 * D)]
    starts = chunk_starts(plans, chunk=H)
    assert len(starts) == 3 * 24 - 1
    assert starts == sorted(set(starts))


def test_contiguous_runs_group_missing_chunks() -> None:
    starts = [0, H, 2 * H, 5 * H, 6 * H, 9 * H]
    runs = contiguous_runs(starts, chunk=H)
    assert runs == [(0, 2 * H), (5 * H, 6 * H), (9 * H, 9 * H)]
