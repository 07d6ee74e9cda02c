"""PromQL for each indicator kind: the good (or bad) and total events of a range.

Every expression counts events over a range that ends at the evaluation instant, or
at an earlier instant pinned with the ``@`` modifier, so one request at one time can
ask for a window's partial edge and its direct windows together. Pure text, no I/O.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal

from sla.clients.promql import promql_string
from sla.model.durations import format_duration
from sla.model.slo import WINDOW_PLACEHOLDER, Indicator, Query, SLOSpec

_RANGE_SLOT = re.compile(r"\[\s*\$window\s*(:[^\]]*)?\]")


def range_text(
    seconds: int, *, at: int | None = None, step: str = "", left_open: bool = False
) -> str:
    """``[45m]``, or ``[45m] @ 1700000000`` to end the range at an earlier instant.

    A left-open range leaves out a sample sitting exactly on its start: Prometheus
    2.x ranges include both ends, which is harmless for ``increase()`` (adjacent
    ranges telescope) but would count a gauge's boundary sample twice.
    """
    pinned = f" @ {at}" if at is not None else ""
    length = f"{seconds * 1000 - 1}ms" if left_open else format_duration(seconds)
    return f"[{length}{step}]{pinned}"


@functools.lru_cache(maxsize=8192)
def _window_slots(expr: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The text around the ``[$window]`` slots of an expression, and their steps.

    An evaluation fills the same expressions with new ranges on every tick, so the
    expression is searched once and then only joined.
    """
    texts, steps = [], []
    position = 0
    for match in _RANGE_SLOT.finditer(expr):
        texts.append(expr[position : match.start()])
        steps.append(match.group(1) or "")
        position = match.end()
    texts.append(expr[position:])
    return tuple(texts), tuple(steps)


def fill_window(
    expr: str, seconds: int, *, at: int | None = None, left_open: bool = False
) -> str:
    """Put the range into every ``[$window]`` (or subquery ``[$window:1m]``) slot."""
    texts, steps = _window_slots(expr)
    parts = [texts[0]]
    for step, text in zip(steps, texts[1:], strict=True):
        parts.append(range_text(seconds, at=at, step=step, left_open=left_open))
        parts.append(text)
    return "".join(parts)


def expr_is_chunkable(expr: str) -> bool:
    """Only expressions whose window appears as ranges can be pinned with ``@``."""
    return WINDOW_PLACEHOLDER not in _RANGE_SLOT.sub("", expr)


@dataclass(frozen=True)
class CountQueries:
    """Two expressions per range: the events counted (good or bad) and the total."""

    counted: str
    total: str
    counts_bad: bool
    chunkable: bool = True
    samples: bool = False
    """Counts samples (a gauge), not increases: ranges are left-open."""

    def for_range(self, seconds: int, *, at: int | None = None) -> tuple[str, str]:
        return (
            fill_window(self.counted, seconds, at=at, left_open=self.samples),
            fill_window(self.total, seconds, at=at, left_open=self.samples),
        )


WINDOW_PLACEHOLDER_SLOT = f"[{WINDOW_PLACEHOLDER}]"


def _selector_counter(selector: str) -> str:
    return f"sum(increase({selector.strip()}{WINDOW_PLACEHOLDER_SLOT}))"


def _query_counter(query: Query) -> str:
    if query.expr is not None:
        return query.expr
    assert query.metric is not None
    return _selector_counter(query.metric)


def bucket_bound_regex(threshold: float) -> str:
    """A regex matching every decimal spelling of a bucket bound: 1, 1.0, 1.00, 01.

    Client libraries write ``le`` differently (Go writes ``1``, Python ``1.0``), and
    the bound is compared as a number, as the design asks.
    """
    text = format(Decimal(repr(threshold)).normalize(), "f")
    whole, _, fraction = text.partition(".")
    whole_pattern = "0*" if whole == "0" else f"0*{re.escape(whole)}"
    if not fraction:
        return f"{whole_pattern}(\\.0*)?"
    return f"{whole_pattern}\\.{re.escape(fraction)}0*"


def split_selector(selector: str) -> tuple[str, str]:
    """``name{a="b"}`` → (``name``, ``a="b"``)."""
    name, brace, rest = selector.strip().partition("{")
    matchers = rest.rstrip().removesuffix("}").strip().rstrip(",") if brace else ""
    return name.strip(), matchers


def _with_suffix(selector: str, suffix: str, *extra: str) -> str:
    name, matchers = split_selector(selector)
    parts = [m for m in (matchers, *extra) if m]
    return f"{name}{suffix}{{{', '.join(parts)}}}"


def count_queries(indicator: Indicator) -> CountQueries | None:
    """The counting expressions of an indicator; None for raw and composite."""
    if indicator.ratio is not None:
        ratio = indicator.ratio
        counted = ratio.good if ratio.good is not None else ratio.bad
        assert counted is not None
        pair = (_query_counter(counted), _query_counter(ratio.total))
        return CountQueries(
            counted=pair[0],
            total=pair[1],
            counts_bad=ratio.good is None,
            chunkable=all(expr_is_chunkable(e) for e in pair),
        )
    if indicator.latency is not None:
        latency = indicator.latency
        le = "le=~" + promql_string(bucket_bound_regex(latency.threshold))
        return CountQueries(
            counted=_selector_counter(_with_suffix(latency.histogram, "_bucket", le)),
            # The total comes from _count, never from summing buckets with it.
            total=_selector_counter(_with_suffix(latency.histogram, "_count")),
            counts_bad=False,
        )
    if indicator.bool_gauge is not None:
        metric = indicator.bool_gauge.metric.strip()
        return CountQueries(
            counted=f"sum(sum_over_time({metric}{WINDOW_PLACEHOLDER_SLOT}))",
            total=f"sum(count_over_time({metric}{WINDOW_PLACEHOLDER_SLOT}))",
            counts_bad=False,
            samples=True,
        )
    return None


def raw_error_ratio(spec: SLOSpec, seconds: int) -> str:
    assert spec.indicator.raw is not None
    return fill_window(spec.indicator.raw.error_ratio, seconds)


def indicator_key(spec: SLOSpec) -> str:
    """A stable hash of what is counted: an edited query starts a new chunk history."""
    definition = spec.indicator.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def slice_history_key(spec: SLOSpec) -> str | None:
    """The history of per-slice counts of a timeslice SLO, apart from its events:
    the same indicator cut into slices of another length is another history."""
    if spec.timeslice is None:
        return None
    return f"{indicator_key(spec)}/slices/{spec.timeslice.length}"


def history_keys(spec: SLOSpec) -> list[str]:
    """Every chunk history an SLO's evaluations keep."""
    sliced = slice_history_key(spec)
    return [indicator_key(spec)] + ([sliced] if sliced else [])
