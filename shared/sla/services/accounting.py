"""Incremental accounting: which stored chunks and which exact edges make a window.

Counts of closed intervals do not change, so good and total are kept per SLO in
grid-aligned chunks once a chunk has closed and settled. A window ``[T − W, T]`` is
then: its left edge ``[T − W, a]`` asked of Prometheus at instant ``a`` (the first
chunk boundary in the window), the stored chunks ``[a, b)``, and the right edge
``[b, T]``, where ``b`` is the end of the newest settled chunk. ``increase()`` over a
closed range is ``v(end) − v(start)``, so the pieces telescope to the whole window
exactly when samples sit on the boundaries (a 60 s scrape grid and minute-aligned
evaluation times); off the grid each boundary adds Prometheus' extrapolation error.
Windows no longer than a chunk are asked directly. Pure arithmetic, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowPlan:
    """How one window of ``seconds`` ending at ``end`` is counted."""

    seconds: int
    end: int
    chunk_from: int
    chunk_to: int

    @property
    def start(self) -> int:
        return self.end - self.seconds

    @property
    def direct(self) -> bool:
        """No stored chunk fits: the whole window is one query."""
        return self.chunk_to <= self.chunk_from

    @property
    def left_edge(self) -> int:
        """Seconds before the first chunk, asked at instant ``chunk_from``."""
        return self.chunk_from - self.start

    @property
    def right_edge(self) -> int:
        """Seconds after the last settled chunk, asked at the evaluation instant."""
        return self.end - self.chunk_to


def settled_until(end: int, *, chunk: int, settle: int) -> int:
    """The end of the newest chunk that closed at least ``settle`` seconds ago."""
    return (end - settle) // chunk * chunk


def plan_window(end: int, seconds: int, *, chunk: int, settle: int) -> WindowPlan:
    if seconds <= chunk:
        return WindowPlan(seconds=seconds, end=end, chunk_from=end, chunk_to=end)
    start = end - seconds
    first = -(-start // chunk) * chunk  # ceiling to the chunk grid
    last = settled_until(end, chunk=chunk, settle=settle)
    if last <= first:
        return WindowPlan(seconds=seconds, end=end, chunk_from=end, chunk_to=end)
    return WindowPlan(seconds=seconds, end=end, chunk_from=first, chunk_to=last)


def chunk_starts(plans: list[WindowPlan], *, chunk: int) -> list[int]:
    """Every chunk start any of the windows needs, oldest first, each once."""
    starts: set[int] = set()
    for plan in plans:
        if not plan.direct:
            starts.update(range(plan.chunk_from, plan.chunk_to, chunk))
    return sorted(starts)


def contiguous_runs(starts: list[int], *, chunk: int) -> list[tuple[int, int]]:
    """Missing chunk starts grouped into ``[first, last]`` runs for range queries."""
    runs: list[tuple[int, int]] = []
    for start in starts:
        if runs and start == runs[-1][1] + chunk:
            runs[-1] = (runs[-1][0], start)
        else:
            runs.append((start, start))
    return runs
