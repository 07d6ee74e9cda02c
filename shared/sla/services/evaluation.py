"""Evaluation: SLO definitions and one instant in, budget snapshots out.

One evaluation asks every question at the same instant ``T``. Per SLO it needs the
events of each burn-rate window and of the SLO window. Long windows come from the
chunk history (see :mod:`sla.services.accounting`): missing chunks are read with
range queries, the edges with instant queries pinned by ``@``, and everything an
evaluation asks at ``T`` goes to Prometheus in a few tagged, batched requests. An
SLO that fails (a rejected query, impossible counts) becomes a ``no_data`` snapshot
with the reason; the others go on.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sla.budget.calendar import period_end, period_start
from sla.budget.counts import Counts
from sla.budget.engine import Observation, evaluate
from sla.budget.windows import BurnRateTable, burn_rate_table, check_timeslice
from sla.clients.prometheus import (
    TAG_LABEL,
    InstantSample,
    PrometheusClient,
    QueryRejected,
    RangeSeries,
)
from sla.clients.store.chunks import ChunkInventory, ChunkSpan, ChunkSum
from sla.clients.store.records import CountChunk
from sla.errors import DataError, DatasourceError, DatasourceUnavailable, SpecError
from sla.model.durations import format_duration
from sla.model.slo import SLODefinition
from sla.model.snapshot import BudgetSnapshot
from sla.services.accounting import (
    WindowPlan,
    chunk_starts,
    contiguous_runs,
    plan_window,
    settled_until,
)
from sla.services.queries import (
    CountQueries,
    count_queries,
    indicator_key,
    raw_error_ratio,
    slice_history_key,
)

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_RANGE_POINTS = 10_000
# SLOs whose missing chunks share one span are read together, this many a request
# (two expressions each), like the instant batches of the Prometheus client.
BACKFILL_SLOS_PER_REQUEST = 25

# How a snapshot's reason begins when its datasource failed it: not reached, a
# query refused, or an answer that is not the API's.
UNAVAILABLE = "datasource unavailable"
REJECTED = "query rejected by Prometheus"
UNUSABLE = "datasource answer unusable"
DATASOURCE_FAILURES = (UNAVAILABLE, REJECTED, UNUSABLE)


class ChunkHistory(Protocol):
    """The part of the store that keeps count chunks."""

    async def chunk_inventory(
        self,
        spans: Sequence[ChunkSpan],
        chunk_seconds: int,
        *,
        closed_before: datetime,
    ) -> dict[tuple[str, str], ChunkInventory]: ...

    async def chunk_sums(
        self, spans: Sequence[ChunkSpan], chunk_seconds: int
    ) -> dict[str, ChunkSum]: ...

    async def get_chunks(
        self,
        indicator_key: str,
        datasource: str,
        chunk_seconds: int,
        *,
        start: datetime,
        end: datetime,
    ) -> list[CountChunk]: ...

    async def put_chunks(self, chunks: Iterable[CountChunk]) -> int: ...


@dataclass(frozen=True)
class EvaluationOptions:
    chunk_seconds: int = 3600
    settle_seconds: int = 300
    # A chunk is read a second time this long after it closed, for late samples
    # (remote write, out-of-order ingestion); then it is final.
    revisit_after_seconds: int = 3600
    scrape_interval: int = 60
    incremental: bool = True


@dataclass
class EvaluationResult:
    snapshots: list[BudgetSnapshot]
    unavailable: dict[str, str] = field(default_factory=dict)
    """Datasource URL → why it could not be asked; its SLOs are ``no_data``."""


ClientFor = Callable[[str], PrometheusClient]


@dataclass
class _Target:
    """One SLO under evaluation, with what was learnt about it so far."""

    slo: SLODefinition
    datasource: str
    table: BurnRateTable | None = None
    queries: CountQueries | None = None
    windows: set[int] = field(default_factory=set)
    window_seconds: int = 0
    window_start: datetime | None = None
    period_seconds: int = 0
    measured: dict[int, Counts | None] = field(default_factory=dict)
    slices: list[Counts] | None = None
    notes: list[str] = field(default_factory=list)
    failure: str | None = None

    @property
    def key(self) -> str:
        return self.slo.key

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason


class Evaluator:
    """Evaluates SLOs against their datasources, keeping the chunk history."""

    def __init__(
        self,
        client_for: ClientFor,
        *,
        default_datasource: str,
        chunks: ChunkHistory | None = None,
        options: EvaluationOptions | None = None,
    ) -> None:
        self._client_for = client_for
        self._default = default_datasource.rstrip("/")
        self._chunks = chunks
        self.options = options or EvaluationOptions()

    async def evaluate(
        self, slos: Sequence[SLODefinition], *, at: datetime
    ) -> EvaluationResult:
        at = at.astimezone(UTC).replace(microsecond=0)
        targets = {slo.key: self._target(slo, at) for slo in slos}
        self._request_component_windows(targets)
        unavailable: dict[str, str] = {}
        by_source: dict[str, list[_Target]] = defaultdict(list)
        for target in targets.values():
            if target.failure is None and target.slo.spec.indicator.composite is None:
                by_source[target.datasource].append(target)
        outcomes = await asyncio.gather(
            *(self._measure_source(url, group, at) for url, group in by_source.items()),
            return_exceptions=True,
        )
        for (url, group), outcome in zip(by_source.items(), outcomes, strict=True):
            if isinstance(outcome, DatasourceUnavailable):
                unavailable[url] = str(outcome)
                for target in group:
                    target.fail(f"{UNAVAILABLE}: {outcome}")
            elif isinstance(outcome, DatasourceError):
                for target in group:
                    target.fail(_datasource_failure(outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
        self._combine_composites(targets)
        snapshots = [self._snapshot(target, at) for target in targets.values()]
        return EvaluationResult(snapshots=snapshots, unavailable=unavailable)

    # -- planning ---------------------------------------------------------------

    def _target(self, slo: SLODefinition, at: datetime) -> _Target:
        spec = slo.spec
        url = spec.datasource.url if spec.datasource and spec.datasource.url else None
        target = _Target(slo=slo, datasource=(url or self._default).rstrip("/"))
        if spec.window.calendar is not None:
            start = period_start(at, unit=spec.window.calendar, zone=spec.zone)
            end = period_end(at, unit=spec.window.calendar, zone=spec.zone)
            target.window_start = start
            target.window_seconds = max(int((at - start).total_seconds()), 0)
            target.period_seconds = int((end - start).total_seconds())
        else:
            assert spec.window.seconds is not None
            target.window_seconds = target.period_seconds = spec.window.seconds
            target.window_start = at - timedelta(seconds=spec.window.seconds)
        try:
            target.table = burn_rate_table(
                spec, scrape_interval=self.options.scrape_interval
            )
        except SpecError as error:
            target.fail(f"burn-rate table: {error.message}")
            return target
        try:
            check_timeslice(spec, scrape_interval=self.options.scrape_interval)
        except SpecError as error:
            target.fail(f"timeslices: {error.message}")
            return target
        target.windows = set(target.table.windows)
        if target.window_seconds > 0:
            target.windows.add(target.window_seconds)
        target.queries = count_queries(spec.indicator)
        return target

    def _request_component_windows(self, targets: Mapping[str, _Target]) -> None:
        for target in targets.values():
            composite = target.slo.spec.indicator.composite
            if composite is None or target.failure:
                continue
            namespace = target.slo.metadata.namespace
            for component in composite.components:
                part = targets.get(f"{namespace}/{component.slo}")
                if part is None:
                    target.fail(
                        f"composite component {namespace}/{component.slo} is not "
                        "among the SLOs evaluated"
                    )
                elif part.slo.spec.indicator.composite is not None:
                    target.fail(f"component {part.key} is itself a composite")
                else:
                    part.windows |= target.windows

    # -- measuring --------------------------------------------------------------

    async def _measure_source(
        self, url: str, targets: list[_Target], at: datetime
    ) -> None:
        client = self._client_for(url)
        counting = [t for t in targets if t.queries is not None]
        chunked: dict[str, dict[int, Counts | None]] = {}
        if self.options.incremental and self._chunks is not None:
            chunked = await self._chunk_counts(client, url, counting, at)
        exprs: dict[str, str] = {}
        pieces: dict[tuple[str, int], list[tuple[str, str]]] = {}
        for target in targets:
            self._instant_exprs(target, at, chunked, exprs, pieces)
        # Expressions of one moment together: each request then reads the blocks
        # around its moment, not every block from the oldest left edge to now.
        ordered = dict(sorted(exprs.items(), key=lambda item: item[0].split("|")[-2]))
        answers = await client.instant_many(ordered, time=at) if exprs else None
        for target in targets:
            if answers is not None:
                self._read_instant(target, answers, pieces, chunked)
        slice_targets = [t for t in counting if t.slo.spec.timeslice and not t.failure]
        await asyncio.gather(
            *(self._measure_slices(client, url, t, at) for t in slice_targets)
        )

    def _plans(self, target: _Target, at: datetime) -> dict[int, WindowPlan]:
        end = int(at.timestamp())
        options = self.options
        return {
            seconds: plan_window(
                end, seconds, chunk=options.chunk_seconds, settle=options.settle_seconds
            )
            for seconds in target.windows
        }

    def _instant_exprs(
        self,
        target: _Target,
        at: datetime,
        chunked: Mapping[str, Mapping[int, Counts | None]],
        exprs: dict[str, str],
        pieces: dict[tuple[str, int], list[tuple[str, str]]],
    ) -> None:
        """Add the instant expressions the target still needs, tagged by piece."""
        if target.failure:
            return
        if target.queries is None:
            for seconds in target.windows:
                tag = f"{target.key}|raw|{seconds}"
                exprs[tag] = raw_error_ratio(target.slo.spec, seconds)
            return
        plans = self._plans(target, at)
        use_chunks = target.key in chunked
        right_done = False
        for seconds, plan in sorted(plans.items()):
            parts: list[tuple[str, str]] = []
            if not use_chunks or plan.direct:
                parts.append(self._pair(target, exprs, f"w{seconds}", seconds, None))
            else:
                if plan.left_edge > 0:
                    parts.append(
                        self._pair(
                            target,
                            exprs,
                            f"l{seconds}",
                            plan.left_edge,
                            plan.chunk_from,
                        )
                    )
                if plan.right_edge > 0:
                    if not right_done:
                        self._pair(target, exprs, "right", plan.right_edge, None)
                        right_done = True
                    parts.append((f"{target.key}|right|c", f"{target.key}|right|t"))
            pieces[(target.key, seconds)] = parts

    @staticmethod
    def _pair(
        target: _Target, exprs: dict[str, str], name: str, seconds: int, at: int | None
    ) -> tuple[str, str]:
        assert target.queries is not None
        counted, total = target.queries.for_range(seconds, at=at)
        tags = (f"{target.key}|{name}|c", f"{target.key}|{name}|t")
        exprs[tags[0]], exprs[tags[1]] = counted, total
        return tags

    def _read_instant(
        self,
        target: _Target,
        answers: Mapping[str, list[InstantSample]],
        pieces: Mapping[tuple[str, int], list[tuple[str, str]]],
        chunked: Mapping[str, Mapping[int, Counts | None]],
    ) -> None:
        if target.failure:
            return
        try:
            if target.queries is None:
                for seconds in target.windows:
                    target.measured[seconds] = _raw_counts(
                        answers[f"{target.key}|raw|{seconds}"], target
                    )
                return
            for seconds in target.windows:
                parts = [
                    _pair_counts(answers, tags, target)
                    for tags in pieces.get((target.key, seconds), [])
                ]
                if target.key in chunked and seconds in chunked[target.key]:
                    parts.append(chunked[target.key][seconds])
                target.measured[seconds] = _sum_parts(parts)
        except DatasourceError as error:
            target.fail(_datasource_failure(error))

    # -- chunk history ----------------------------------------------------------

    async def _chunk_counts(
        self, client: PrometheusClient, url: str, targets: list[_Target], at: datetime
    ) -> dict[str, dict[int, Counts | None]]:
        """Each chunkable target's windows summed over the stored chunks.

        Three store round trips whatever the number of SLOs: what each history
        holds, the due chunks written after they are read from Prometheus, and the
        windows' sums, added up in the database.
        """
        assert self._chunks is not None
        chunk = self.options.chunk_seconds
        eligible = [t for t in targets if t.queries and t.queries.chunkable]
        plans = {t.key: self._plans(t, at) for t in eligible}
        wanted = {
            t.key: chunk_starts(list(plans[t.key].values()), chunk=chunk)
            for t in eligible
        }
        history = {t.key: _history(t, url, wanted[t.key], chunk) for t in eligible}
        spans = [span for span in history.values() if span is not None]
        end = int(at.timestamp())
        inventory = await self._chunks.chunk_inventory(
            spans,
            chunk,
            closed_before=_utc(end - chunk - self.options.revisit_after_seconds),
        )
        due = {
            t.key: await self._due(t, url, wanted[t.key], history[t.key], inventory)
            for t in eligible
        }
        fresh = await self._backfill(client, url, eligible, due, at)
        if fresh:
            await self._chunks.put_chunks(
                c for chunks in fresh.values() for c in chunks.values()
            )
        return await self._window_sums(url, eligible, plans)

    async def _due(
        self,
        target: _Target,
        url: str,
        wanted: list[int],
        span: ChunkSpan | None,
        inventory: Mapping[tuple[str, str], ChunkInventory],
    ) -> list[int]:
        """Chunks to read from Prometheus: the missing ones and the due revisits."""
        assert self._chunks is not None
        if span is None:
            return []
        held = inventory.get((span.indicator_key, url))
        revisits = (
            [int(moment.timestamp()) for moment in held.unrevisited] if held else []
        )
        if held is not None and held.stored == len(wanted):
            return revisits
        newer = _missing_after_newest(held, wanted, self.options.chunk_seconds)
        if newer is not None:
            return sorted({*newer, *revisits})
        # Something is missing inside the history (a gap after downtime): find what.
        stored = await self._chunks.get_chunks(
            span.indicator_key,
            url,
            self.options.chunk_seconds,
            start=span.start,
            end=span.end,
        )
        present = {int(c.chunk_start.timestamp()) for c in stored}
        missing = [start for start in wanted if start not in present]
        return sorted({*missing, *revisits})

    async def _window_sums(
        self,
        url: str,
        targets: list[_Target],
        plans: Mapping[str, dict[int, WindowPlan]],
    ) -> dict[str, dict[int, Counts | None]]:
        assert self._chunks is not None
        spans = [
            ChunkSpan(
                tag=f"{target.key}|{seconds}",
                indicator_key=indicator_key(target.slo.spec),
                datasource=url,
                start=_utc(plan.chunk_from),
                end=_utc(plan.chunk_to),
            )
            for target in targets
            for seconds, plan in plans[target.key].items()
            if not plan.direct
        ]
        sums = await self._chunks.chunk_sums(spans, self.options.chunk_seconds)
        counts: dict[str, dict[int, Counts | None]] = {
            t.key: {} for t in targets if not t.failure
        }
        for span in spans:
            key, seconds = span.tag.rsplit("|", 1)
            if key not in counts:
                continue
            found = sums.get(span.tag)
            present = found is not None and found.present > 0
            counts[key][int(seconds)] = (
                Counts(good=found.good, total=found.total)
                if present and found
                else None
            )
        return counts

    async def _backfill(
        self,
        client: PrometheusClient,
        url: str,
        targets: list[_Target],
        due: Mapping[str, list[int]],
        at: datetime,
    ) -> dict[str, dict[int, CountChunk]]:
        """Read the due chunks with range queries, SLOs sharing a span together."""
        chunk = self.options.chunk_seconds
        by_span: dict[tuple[int, int], list[_Target]] = defaultdict(list)
        for target in targets:
            for first, last in contiguous_runs(due[target.key], chunk=chunk):
                for piece in _split_run(first, last, chunk=chunk):
                    by_span[piece].append(target)
        requests = [
            (span, group[i : i + BACKFILL_SLOS_PER_REQUEST])
            for span, group in by_span.items()
            for i in range(0, len(group), BACKFILL_SLOS_PER_REQUEST)
        ]
        results = await asyncio.gather(
            *(self._read_span(client, url, span, group, at) for span, group in requests)
        )
        fresh: dict[str, dict[int, CountChunk]] = defaultdict(dict)
        for found in results:
            for key, chunks in found.items():
                fresh[key].update(chunks)
        return fresh

    async def _read_span(
        self,
        client: PrometheusClient,
        url: str,
        span: tuple[int, int],
        group: list[_Target],
        at: datetime,
    ) -> dict[str, dict[int, CountChunk]]:
        chunk = self.options.chunk_seconds
        first, last = span
        exprs: list[str] = []
        for target in group:
            assert target.queries is not None
            exprs.extend(target.queries.for_range(chunk))
        try:
            series = await client.range(
                _tagged(exprs),
                start=_utc(first + chunk),
                end=_utc(last + chunk),
                step=timedelta(seconds=chunk),
            )
        except QueryRejected:
            # One bad SLO spoils the union: read each on its own to find it.
            if len(group) == 1:
                group[0].fail(f"{REJECTED} while reading chunks")
                return {}
            halves = [group[: len(group) // 2], group[len(group) // 2 :]]
            parts = await asyncio.gather(
                *(self._read_span(client, url, span, half, at) for half in halves)
            )
            return {key: chunks for part in parts for key, chunks in part.items()}
        values = _points_by_tag(series)
        found: dict[str, dict[int, CountChunk]] = {}
        for index, target in enumerate(group):
            counted = values.get(2 * index, {})
            total = values.get(2 * index + 1, {})
            found[target.key] = {
                start: self._chunk_record(
                    target,
                    url,
                    start,
                    counted.get(start + chunk),
                    total.get(start + chunk),
                    at,
                )
                for start in range(first, last + chunk, chunk)
            }
        return found

    def _chunk_record(
        self,
        target: _Target,
        url: str,
        start: int,
        counted: float | None,
        total: float | None,
        at: datetime,
    ) -> CountChunk:
        assert target.queries is not None
        end = int(at.timestamp())
        closed = start + self.options.chunk_seconds
        good = _good_of(counted, total, counts_bad=target.queries.counts_bad)
        return CountChunk(
            indicator_key=indicator_key(target.slo.spec),
            datasource=url,
            chunk_start=_utc(start),
            chunk_seconds=self.options.chunk_seconds,
            good=good,
            total=total or 0.0,
            read_at=at,
            absent=total is None,
            revisited=closed + self.options.revisit_after_seconds <= end,
        )

    # -- timeslices -------------------------------------------------------------

    async def _measure_slices(
        self, client: PrometheusClient, url: str, target: _Target, at: datetime
    ) -> None:
        """Per-slice counts over the SLO window, slices aligned to their length.

        The slices that fill whole, settled chunks come from the chunk history
        (read from Prometheus once at the slice step, and again at the revisit);
        the slices before and after them are asked directly.
        """
        spec = target.slo.spec
        assert spec.timeslice is not None and target.queries is not None
        length = spec.timeslice.length
        end = int(at.timestamp()) // length * length
        start = int(at.timestamp()) - target.window_seconds
        first_end = -(-start // length) * length + length
        if first_end > end:
            target.slices = []
            return
        try:
            target.slices = await self._slices(client, url, target, first_end, end, at)
        except QueryRejected as error:
            target.fail(_datasource_failure(error))

    async def _slices(
        self,
        client: PrometheusClient,
        url: str,
        target: _Target,
        first_end: int,
        last_end: int,
        at: datetime,
    ) -> list[Counts]:
        """The slices ending at ``first_end``, one length later, … ``last_end``."""
        assert target.slo.spec.timeslice is not None and target.queries is not None
        length = target.slo.spec.timeslice.length
        chunk, options = self.options.chunk_seconds, self.options
        stored_from = -(-(first_end - length) // chunk) * chunk
        stored_to = min(
            last_end // chunk * chunk,
            settled_until(
                int(at.timestamp()), chunk=chunk, settle=options.settle_seconds
            ),
        )
        if (
            self._chunks is None
            or not options.incremental
            or not target.queries.chunkable
            or chunk % length
            or stored_to <= stored_from
        ):
            return await self._read_slices(client, target, first_end, last_end)
        before = await self._read_slices(client, target, first_end, stored_from)
        stored = await self._stored_slices(
            client, url, target, stored_from, stored_to, at
        )
        after = await self._read_slices(client, target, stored_to + length, last_end)
        return before + stored + after

    async def _stored_slices(
        self,
        client: PrometheusClient,
        url: str,
        target: _Target,
        first: int,
        end: int,
        at: datetime,
    ) -> list[Counts]:
        """The slices of the chunks starting from ``first`` to before ``end``,
        reading from Prometheus the chunks missing or due for their revisit."""
        assert self._chunks is not None and target.slo.spec.timeslice is not None
        key = slice_history_key(target.slo.spec)
        assert key is not None
        length = target.slo.spec.timeslice.length
        chunk, now = self.options.chunk_seconds, int(at.timestamp())
        revisit_by = now - chunk - self.options.revisit_after_seconds
        held = {
            int(c.chunk_start.timestamp()): c
            for c in await self._chunks.get_chunks(
                key, url, chunk, start=_utc(first), end=_utc(end)
            )
        }
        due = [
            start
            for start in range(first, end, chunk)
            if start not in held or (not held[start].revisited and start <= revisit_by)
        ]
        fresh: list[CountChunk] = []
        per_chunk = chunk // length
        for run_first, run_last in contiguous_runs(due, chunk=chunk):
            counts = await self._read_slices(
                client, target, run_first + length, run_last + chunk
            )
            for index, start in enumerate(range(run_first, run_last + chunk, chunk)):
                part = counts[index * per_chunk : (index + 1) * per_chunk]
                fresh.append(
                    CountChunk(
                        indicator_key=key,
                        datasource=url,
                        chunk_start=_utc(start),
                        chunk_seconds=chunk,
                        good=math.fsum(c.good for c in part),
                        total=math.fsum(c.total for c in part),
                        read_at=at,
                        slice_good=tuple(c.good for c in part),
                        slice_total=tuple(c.total for c in part),
                        revisited=start <= revisit_by,
                    )
                )
        if fresh:
            await self._chunks.put_chunks(fresh)
            held.update((int(c.chunk_start.timestamp()), c) for c in fresh)
        slices: list[Counts] = []
        for start in range(first, end, chunk):
            stored = held[start]
            assert stored.slice_good is not None and stored.slice_total is not None
            slices.extend(
                Counts(good=good, total=total)
                for good, total in zip(
                    stored.slice_good, stored.slice_total, strict=True
                )
            )
        return slices

    async def _read_slices(
        self, client: PrometheusClient, target: _Target, first_end: int, last_end: int
    ) -> list[Counts]:
        """The slices ending from ``first_end`` to ``last_end``, asked directly."""
        assert target.slo.spec.timeslice is not None and target.queries is not None
        length = target.slo.spec.timeslice.length
        slices: list[Counts] = []
        if first_end > last_end:
            return slices
        for chunk_first, chunk_last in _split_run(first_end, last_end, chunk=length):
            series = await client.range(
                _tagged(list(target.queries.for_range(length))),
                start=_utc(chunk_first),
                end=_utc(chunk_last),
                step=timedelta(seconds=length),
            )
            values = _points_by_tag(series)
            for moment in range(chunk_first, chunk_last + length, length):
                counted, total = (
                    values.get(0, {}).get(moment),
                    values.get(1, {}).get(moment),
                )
                good = _good_of(counted, total, counts_bad=target.queries.counts_bad)
                slices.append(Counts(good=good, total=total or 0.0))
        return slices

    # -- composites and snapshots ---------------------------------------------

    def _combine_composites(self, targets: Mapping[str, _Target]) -> None:
        for target in targets.values():
            composite = target.slo.spec.indicator.composite
            if composite is None or target.failure:
                continue
            namespace = target.slo.metadata.namespace
            parts = [
                (component.weight, targets[f"{namespace}/{component.slo}"])
                for component in composite.components
            ]
            failed = [part.key for _, part in parts if part.failure]
            if failed:
                target.fail(f"components failed: {', '.join(failed)}")
                continue
            for seconds in target.windows:
                present = [
                    part.measured[seconds].scaled(weight)  # type: ignore[union-attr]
                    for weight, part in parts
                    if part.measured.get(seconds) is not None
                ]
                target.measured[seconds] = _sum_parts(present) if present else None

    def _snapshot(self, target: _Target, at: datetime) -> BudgetSnapshot:
        table = target.table or BurnRateTable(rows=())
        window: Counts | None = None
        failure = target.failure
        if failure is None:
            window, failure = _checked(
                target.measured.get(target.window_seconds), target
            )
        burn: dict[int, Counts | None] = {}
        for seconds in table.windows:
            counts, problem = _checked(target.measured.get(seconds), target)
            burn[seconds] = counts
            failure = failure or problem
        if target.queries is None and target.slo.spec.indicator.raw is not None:
            target.notes.append(
                "raw error-ratio indicator: evaluated per window, not chunked; "
                "events are the ratio itself"
            )
        observation = Observation(
            window=window,
            burn_windows=burn,
            window_start=target.window_start or at,
            period_seconds=target.period_seconds,
            slices=target.slices,
            notes=tuple(target.notes),
            failure=failure,
        )
        return evaluate(target.slo, table, observation, evaluated_at=at)


# -- pure helpers ---------------------------------------------------------------


def _datasource_failure(error: DatasourceError) -> str:
    prefix = REJECTED if isinstance(error, QueryRejected) else UNUSABLE
    return f"{prefix}: {error}"


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _split_run(first: int, last: int, *, chunk: int) -> list[tuple[int, int]]:
    """Split a run of chunk starts so no range query exceeds Prometheus' points."""
    pieces = []
    step = MAX_RANGE_POINTS * chunk
    start = first
    while start <= last:
        pieces.append((start, min(last, start + step - chunk)))
        start += step
    return pieces


def _tagged(exprs: Sequence[str]) -> str:
    return "\nor\n".join(
        f'label_replace(\n{expr}\n, "{TAG_LABEL}", "{index}", "", "")'
        for index, expr in enumerate(exprs)
    )


def _points_by_tag(series: Sequence[RangeSeries]) -> dict[int, dict[int, float]]:
    """Tag index → point time (Unix seconds) → value, one series per tag."""
    values: dict[int, dict[int, float]] = {}
    for one in series:
        tag = one.labels.get(TAG_LABEL, "")
        if not tag.isdigit():
            raise DatasourceError(f"series {one.selector()} lost its {TAG_LABEL} label")
        if int(tag) in values:
            raise DatasourceError(
                f"expression {tag} returned several series; wrap it in sum()"
            )
        values[int(tag)] = {round(p.timestamp.timestamp()): p.value for p in one.points}
    return values


def _good_of(counted: float | None, total: float | None, *, counts_bad: bool) -> float:
    """Good events from the counted ones; an absent counted series means none."""
    if total is None:
        return 0.0
    if counted is None:
        return total if counts_bad else 0.0
    return total - counted if counts_bad else counted


def _one_value(samples: list[InstantSample], target: _Target) -> float | None:
    if not samples:
        return None
    if len(samples) > 1:
        names = {name for sample in samples for name in sample.labels}
        differing = sorted(
            name for name in names if len({s.labels.get(name) for s in samples}) > 1
        )
        raise DatasourceError(
            f"SLO {target.key}: expected one series, got {len(samples)} differing "
            f"in {', '.join(differing) or 'no labels'}; aggregate them with sum()"
        )
    return samples[0].value


def _pair_counts(
    answers: Mapping[str, list[InstantSample]], tags: tuple[str, str], target: _Target
) -> Counts | None:
    assert target.queries is not None
    counted = _one_value(answers[tags[0]], target)
    total = _one_value(answers[tags[1]], target)
    if total is None:
        return None
    good = _good_of(counted, total, counts_bad=target.queries.counts_bad)
    return Counts(good=good, total=total)


def _raw_counts(samples: list[InstantSample], target: _Target) -> Counts | None:
    ratio = _one_value(samples, target)
    if ratio is None:
        return None
    if math.isnan(ratio):
        # 0/0: the expression's own division by zero traffic.
        return Counts(good=0.0, total=0.0)
    return Counts(good=1.0 - ratio, total=1.0)


def _sum_parts(parts: Sequence[Counts | None]) -> Counts | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    return Counts(
        good=math.fsum(p.good for p in present),
        total=math.fsum(p.total for p in present),
    )


def _missing_after_newest(
    held: ChunkInventory | None, wanted: list[int], chunk: int
) -> list[int] | None:
    """The missing chunks when the history holds every chunk from the span's start
    to its newest one (each new hour, a new SLO); None when it has holes.

    Stored chunks sit on the chunk grid, so a count equal to the grid points from
    the span's start to the newest stored one means all of them are stored.
    """
    if held is None or held.newest is None or held.stored == 0:
        return list(wanted)
    newest = int(held.newest.timestamp())
    if held.stored != (newest - wanted[0]) // chunk + 1:
        return None
    return [start for start in wanted if start > newest]


def _history(
    target: _Target, url: str, wanted: list[int], chunk: int
) -> ChunkSpan | None:
    """The one contiguous range of chunks a target's windows need, or None."""
    if not wanted:
        return None
    return ChunkSpan(
        tag=target.key,
        indicator_key=indicator_key(target.slo.spec),
        datasource=url,
        start=_utc(wanted[0]),
        end=_utc(wanted[-1] + chunk),
    )


def _checked(
    counts: Counts | None, target: _Target
) -> tuple[Counts | None, str | None]:
    """Validate summed counts; impossible ones become the SLO's failure reason."""
    if counts is None:
        return None, None
    try:
        return Counts.of_good(counts.good, counts.total, series=target.key), None
    except DataError as error:
        return None, f"data error: {error}"


__all__ = [
    "ChunkHistory",
    "EvaluationOptions",
    "EvaluationResult",
    "Evaluator",
    "format_duration",
]
