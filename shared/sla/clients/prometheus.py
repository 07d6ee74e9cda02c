"""Prometheus HTTP API client: instant and range queries at an explicit time.

Every query names its evaluation time; the client has no idea of "now", so all
queries of one evaluation see the same instant. Values are floats, and NaN and
±Inf are kept as floats so callers can report them as data errors with the series.

How failures come out (all raised ``from`` the httpx error where there is one):

    400, 422 and other 4xx            QueryRejected (a DatasourceError), no retry
    429, 5xx, connection, timeout     retried with backoff, then QueryUnavailable
    the evaluation's deadline passes  QueryUnavailable (a DatasourceUnavailable)
    an answer that is not the API's   DatasourceError

``instant_many`` evaluates many instant-vector expressions in few requests by
tagging each one's series with a label and joining them with ``or``.
"""

from __future__ import annotations

import asyncio
import time as monotonic_clock
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from yarl import URL

from sla.clients.promql import label_matcher
from sla.errors import DatasourceError, DatasourceUnavailable

__all__ = [
    "DEFAULT_BATCH_MAX_BYTES",
    "DEFAULT_BATCH_MAX_EXPRESSIONS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_TIMEOUT_SECONDS",
    "TAG_LABEL",
    "BatchResult",
    "ClientStats",
    "Deadline",
    "InstantSample",
    "Point",
    "PrometheusClient",
    "QueryRejected",
    "QueryUnavailable",
    "RangeSeries",
    "RetryPolicy",
    "plan_batches",
    "tagged_union",
]

# The design's settings table: SLA_PROMETHEUS_TIMEOUT_SECONDS and
# SLA_EVALUATION_CONCURRENCY.
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
DEFAULT_CONCURRENCY: Final = 8

# Batch limits from bench/bench_prometheus_batching.py (Prometheus 2.42, 2 cores,
# 8 requests in flight, increase() over 5m and 1h): 1,000 expressions took 1.8 s
# one per request, 0.12 s at 25, 0.10 s at 50, 0.12 s at 100 and 0.14 s at 250;
# 4,000 took 8.4 s, 0.45 s, 0.39 s, 0.41 s and 0.61 s. 50 sits in the middle of
# the flat part and keeps the search for a rejected expression short. 64 KiB
# stops long expressions from piling into one request evaluated on one core.
DEFAULT_BATCH_MAX_EXPRESSIONS: Final = 50
DEFAULT_BATCH_MAX_BYTES: Final = 64 * 1024

TAG_LABEL: Final = "__sla_tag"
"""The label ``instant_many`` adds to tell its expressions' series apart."""

# A request line under 4 KiB passes the default limits of common proxies in front
# of Prometheus (nginx allows 8 KiB); longer queries go as a form-encoded POST,
# which the query endpoints accept the same way.
_MAX_GET_QUERY_BYTES: Final = 4096
_FORM: Final = {"Content-Type": "application/x-www-form-urlencoded"}

# Statuses worth another try: Prometheus answers 503 when it is overloaded or a
# query timed out, 500 for internal errors; proxies use 502/504, limiters 429.
_TRANSIENT_STATUS: Final = frozenset({429, 500, 502, 503, 504})

# Prometheus' answers for a query that cannot be parsed (400, bad_data) or fails
# while evaluating (422, execution): one expression of a batch can cause either.
_SPLIT_ON_STATUS: Final = frozenset({400, 422})

# Of an answer in plain text, the first line, cut to this many characters.
_ERROR_LINE_LIMIT: Final = 200


class QueryRejected(DatasourceError):
    """Prometheus refused the query: wrong syntax, a failed evaluation, no access."""

    def __init__(
        self,
        message: str,
        *,
        query: str,
        status_code: int | None = None,
        error_type: str = "",
    ) -> None:
        self.message = message
        self.query = query
        self.status_code = status_code
        self.error_type = error_type
        super().__init__(f"{message} (query: {_abbreviate(query)})")


class QueryUnavailable(DatasourceUnavailable):
    """Prometheus could not answer in time or at all; a later evaluation may work."""

    def __init__(self, message: str, *, query: str, attempts: int) -> None:
        self.message = message
        self.query = query
        self.attempts = attempts
        super().__init__(
            f"{message} after {attempts} attempt(s) (query: {_abbreviate(query)})"
        )


def _abbreviate(query: str, limit: int = 200) -> str:
    # Batched queries run to kilobytes; the whole text stays on ``.query``.
    flat = " ".join(query.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 1]}…"


@dataclass(frozen=True, slots=True)
class InstantSample:
    """One series of an instant query's answer."""

    labels: Mapping[str, str]
    timestamp: datetime
    value: float

    def selector(self) -> str:
        """The series as PromQL would print it, for messages about bad data."""
        return _selector(self.labels)


@dataclass(frozen=True, slots=True)
class Point:
    timestamp: datetime
    value: float


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series of a range query's answer, its points in time order."""

    labels: Mapping[str, str]
    points: tuple[Point, ...]

    def selector(self) -> str:
        return _selector(self.labels)


def _selector(labels: Mapping[str, str]) -> str:
    name = labels.get("__name__", "")
    matchers = ", ".join(
        label_matcher(key, value)
        for key, value in sorted(labels.items())
        if key != "__name__"
    )
    return f"{name}{{{matchers}}}"


@dataclass(slots=True)
class ClientStats:
    """What the client has cost Prometheus so far, for benchmarks and logs."""

    requests: int = 0
    """HTTP requests sent, retries included."""
    queries: int = 0
    """Queries answered successfully."""
    samples: int = 0
    """Samples Prometheus loaded to answer them (its ``totalQueryableSamples``)."""
    retries: int = 0
    failed: int = 0
    """Requests that got no usable answer (each retried attempt counts)."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on the monotonic clock by which a whole evaluation must be done."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(monotonic_clock.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - monotonic_clock.monotonic()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of transient failures, bounded both in attempts and in time.

    Four attempts with backoff 0.5 s, 1 s, 2 s (plus up to 0.25 s jitter each)
    ride out a Prometheus restart of a few seconds and still leave most of a
    one-minute evaluation tick for the rest of the work.
    """

    max_attempts: int = 4
    max_seconds: float = 30.0
    """No retry starts later than this after the first attempt."""
    initial_backoff: float = 0.5
    max_backoff: float = 4.0
    jitter: float = 0.25


class _Transient(Exception):
    """Carries a retryable failure through tenacity; never leaves the module."""

    def __init__(self, reason: str, cause: httpx.HTTPError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


class _StopAtDeadline(stop_base):
    """Stop when the next sleep would run into the evaluation's deadline."""

    def __init__(self, deadline: Deadline | None) -> None:
        self._deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self._deadline is None:
            return False
        return self._deadline.remaining() <= retry_state.upcoming_sleep


def without_credentials(url: str) -> str:
    """``url`` without a user and password, for messages: ``http://u:p@host/`` is
    shown as ``http://host``."""
    address = httpx.URL(url.rstrip("/"))
    if not address.userinfo:
        return url.rstrip("/")
    return str(address.copy_with(userinfo=b"")).rstrip("/")


class PrometheusClient:
    """Queries one Prometheus (one datasource) over its HTTP API.

    Use it as an async context manager, or call ``aclose`` when done. At most
    ``concurrency`` requests are in flight at once, whatever the number of callers.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        concurrency: int = DEFAULT_CONCURRENCY,
        retry: RetryPolicy | None = None,
    ) -> None:
        if timeout <= 0 or concurrency < 1:
            raise ValueError("timeout must be positive and concurrency at least 1")
        address = httpx.URL(url.rstrip("/"))
        # A user and password written in the address are sent as basic auth and
        # kept out of self.url, which every message about this datasource shows.
        basic = (address.username, address.password) if address.userinfo else None
        self.url = without_credentials(url)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        self._semaphore = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.url,
            auth=basic,
            headers=headers,
            limits=httpx.Limits(max_connections=concurrency),
            # Redirects are not followed, so a plain http:// datasource never
            # makes a TLS connection; building the TLS context it would never use
            # (the system's CA bundle) took 20-35 ms of every sla eval.
            verify=self.url.lower().startswith("https://"),
        )

    def __repr__(self) -> str:
        # The token stays out of reprs and therefore out of logs.
        return f"PrometheusClient({self.url!r})"

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def instant(
        self, expr: str, *, time: datetime, deadline: Deadline | None = None
    ) -> list[InstantSample]:
        """Evaluate ``expr`` at ``time``; a scalar is one series without labels."""
        params = {"query": expr, "time": _format_time(time)}
        data = await self._query("/api/v1/query", params, deadline=deadline)
        return _parse_instant(data, query=expr)

    async def range(
        self,
        expr: str,
        *,
        start: datetime,
        end: datetime,
        step: timedelta,
        deadline: Deadline | None = None,
    ) -> list[RangeSeries]:
        """Evaluate ``expr`` every ``step`` from ``start`` to ``end``, both included."""
        if step <= timedelta(0) or end < start:
            raise ValueError("a range needs a positive step and start <= end")
        params = {
            "query": expr,
            "start": _format_time(start),
            "end": _format_time(end),
            "step": f"{step.total_seconds():.3f}",
        }
        data = await self._query("/api/v1/query_range", params, deadline=deadline)
        return _parse_range(data, query=expr)

    async def instant_many(
        self,
        exprs: Mapping[str, str],
        *,
        time: datetime,
        max_query_bytes: int = DEFAULT_BATCH_MAX_BYTES,
        max_per_query: int = DEFAULT_BATCH_MAX_EXPRESSIONS,
        deadline: Deadline | None = None,
    ) -> BatchResult:
        """Evaluate many instant-vector expressions at ``time`` in few requests.

        Returns each tag's series: none when the expression's series are absent,
        one per series otherwise. A batch that Prometheus rejects is split until
        the rejected expressions stand alone; their tags then raise their own
        QueryRejected on lookup and the other tags are unaffected. A transient
        failure that outlasts the retries fails the whole call.
        """
        batches = plan_batches(
            list(exprs.items()),
            max_query_bytes=max_query_bytes,
            max_per_query=max_per_query,
        )
        runs = [
            asyncio.ensure_future(self._run_batch(batch, time=time, deadline=deadline))
            for batch in batches
        ]
        try:
            outcomes = await asyncio.gather(*runs)
        except BaseException:
            # One failed batch fails the call: stop the others' requests too.
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            raise
        result = BatchResult()
        for series, rejected in outcomes:
            result.add(series, rejected)
        return result

    async def _run_batch(
        self,
        batch: Sequence[tuple[str, str]],
        *,
        time: datetime,
        deadline: Deadline | None,
    ) -> tuple[dict[str, list[InstantSample]], dict[str, QueryRejected]]:
        if len(batch) == 1:
            # Alone, an expression runs as written: errors then point into the
            # caller's text, and scalar expressions work too.
            tag, expr = batch[0]
            try:
                return {tag: await self.instant(expr, time=time, deadline=deadline)}, {}
            except QueryRejected as error:
                return {}, {tag: error}
        query = tagged_union([expr for _, expr in batch])
        try:
            samples = await self.instant(query, time=time, deadline=deadline)
        except QueryRejected as error:
            # Only a query's own content is worth splitting over; a refusal of
            # access or a missing endpoint would refuse every half as well.
            if error.status_code not in _SPLIT_ON_STATUS:
                raise
            middle = len(batch) // 2
            halves = await asyncio.gather(
                self._run_batch(batch[:middle], time=time, deadline=deadline),
                self._run_batch(batch[middle:], time=time, deadline=deadline),
            )
            return _merge(halves)
        return _untag(samples, batch=batch, query=query), {}

    async def _query(
        self, path: str, params: dict[str, str], *, deadline: Deadline | None
    ) -> Mapping[str, Any]:
        query = params["query"]
        if deadline is not None and deadline.remaining() <= 0:
            raise QueryUnavailable(
                "the evaluation's deadline passed", query=query, attempts=0
            )
        retrying = AsyncRetrying(
            stop=(
                stop_after_attempt(self.retry.max_attempts)
                | stop_before_delay(self.retry.max_seconds)
                | _StopAtDeadline(deadline)
            ),
            # wait_exponential's first wait is the multiplier itself (2 ** 0).
            wait=(
                wait_exponential(
                    multiplier=self.retry.initial_backoff, max=self.retry.max_backoff
                )
                + wait_random(0, self.retry.jitter)
            ),
            retry=retry_if_exception_type(_Transient),
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            data: Mapping[str, Any] = await retrying(
                self._attempt, path, params, deadline=deadline
            )
        except _Transient as transient:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise QueryUnavailable(
                f"Prometheus at {self.url}: {transient.reason}",
                query=query,
                attempts=attempts,
            ) from transient.cause
        return data

    def _count_retry(self, retry_state: RetryCallState) -> None:
        self.stats.retries += 1

    async def _attempt(
        self, path: str, params: dict[str, str], *, deadline: Deadline | None
    ) -> Mapping[str, Any]:
        async with self._semaphore:
            # The wait for a slot counts against the deadline, so measure after it.
            timeout = self.timeout
            if deadline is not None:
                timeout = min(timeout, deadline.remaining())
            if timeout <= 0:
                raise QueryUnavailable(
                    "the evaluation's deadline passed",
                    query=params["query"],
                    attempts=0,
                )
            try:
                response = await self._send(path, params, seconds=timeout)
            except (_Transient, DatasourceError):
                self.stats.failed += 1
                raise
        try:
            data = _read_answer(response, query=params["query"])
        except (_Transient, DatasourceError):
            self.stats.failed += 1
            raise
        self.stats.queries += 1
        self.stats.samples += _queryable_samples(data)
        return data

    async def _send(
        self, path: str, params: dict[str, str], *, seconds: float
    ) -> httpx.Response:
        # Prometheus stops evaluating at its own timeout too, so an abandoned query
        # does not keep using its CPU after the client has given up.
        form = {**params, "timeout": f"{seconds:.3f}", "stats": "all"}
        self.stats.requests += 1
        # Encoded once, here, by yarl's quoter in C: a batch of 25 SLOs is tens of
        # kilobytes, and urllib quotes byte by byte in Python, about 0.4 ms a
        # request. A query string is the form body Prometheus parses.
        encoded = _form_encode(form)
        try:
            if len(encoded) <= _MAX_GET_QUERY_BYTES:
                return await self._http.get(path, params=encoded, timeout=seconds)
            return await self._http.post(
                path, content=encoded.encode(), headers=_FORM, timeout=seconds
            )
        except httpx.TimeoutException as error:
            raise _Transient(f"no answer within {seconds:.1f}s", error) from error
        except httpx.TransportError as error:
            raise _Transient(f"{type(error).__name__}: {error}", error) from error
        except httpx.HTTPError as error:
            raise QueryRejected(
                f"Prometheus at {self.url}: {error}", query=params["query"]
            ) from error


def _read_answer(response: httpx.Response, *, query: str) -> Mapping[str, Any]:
    """The ``data`` of a successful answer; raise the right error for the rest."""
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as error:
        status = response.status_code
        error_type, message = _api_error(response)
        if status in _TRANSIENT_STATUS:
            raise _Transient(f"HTTP {status}: {message}", error) from error
        raise QueryRejected(
            f"Prometheus answered HTTP {status}: {message}",
            query=query,
            status_code=status,
            error_type=error_type,
        ) from error
    try:
        body = response.json()
    except ValueError as error:
        raise DatasourceError(
            f"not a Prometheus API answer: {_not_api_body(response)}"
        ) from error
    try:
        if body["status"] != "success":
            raise ValueError(f"status {body['status']!r}: {body.get('error')}")
        data: Mapping[str, Any] = body["data"]
    except (ValueError, KeyError, TypeError) as error:
        raise DatasourceError(f"not a Prometheus API answer: {error}") from error
    return data


def _api_error(response: httpx.Response) -> tuple[str, str]:
    # Prometheus explains itself in JSON; proxies and limiters may answer in text.
    try:
        body = response.json()
        return str(body.get("errorType", "")), str(body["error"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", _not_api_body(response)


def _not_api_body(response: httpx.Response) -> str:
    """A line about an answer that is not the API's JSON, never the raw page."""
    text = response.text.strip()
    if text and not text.startswith("<"):
        return text.splitlines()[0][:_ERROR_LINE_LIMIT]
    # A web page (a login form, a server's 404 page): say what came, not all of it.
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    api = response.request.url.copy_with(query=None)
    return (
        f"{response.reason_phrase or 'no reason given'}, with a "
        f"{media_type or 'untyped'} body of {len(response.content)} bytes instead of "
        f"the API's JSON; is {api} a Prometheus query API?"
    )


def _queryable_samples(data: Mapping[str, Any]) -> int:
    # Present with the stats=all parameter: data.stats.samples.totalQueryableSamples
    # (Prometheus 2.35 and later); older servers simply count as zero.
    try:
        return int(data["stats"]["samples"]["totalQueryableSamples"])
    except (KeyError, TypeError, ValueError):
        return 0


def _format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; evaluation times must be aware")
    return f"{moment.timestamp():.3f}"


def _timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _value(text: str) -> float:
    # Prometheus writes NaN, +Inf and -Inf as strings float() understands.
    return float(text)


def _parse_instant(data: Mapping[str, Any], *, query: str) -> list[InstantSample]:
    try:
        result_type, result = data["resultType"], data["result"]
        if result_type == "scalar":
            seconds, text = result
            return [InstantSample({}, _timestamp(seconds), _value(text))]
        if result_type != "vector":
            raise ValueError(f"result type {result_type!r}, expected a vector")
        return [
            InstantSample(
                dict(item["metric"]),
                _timestamp(item["value"][0]),
                _value(item["value"][1]),
            )
            for item in result
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise DatasourceError(
            f"unusable answer to {_abbreviate(query)}: {error!r}"
        ) from error


def _parse_range(data: Mapping[str, Any], *, query: str) -> list[RangeSeries]:
    try:
        if data["resultType"] != "matrix":
            raise ValueError(f"result type {data['resultType']!r}, expected a matrix")
        return [
            RangeSeries(
                dict(item["metric"]),
                tuple(
                    Point(_timestamp(seconds), _value(text))
                    for seconds, text in item["values"]
                ),
            )
            for item in data["result"]
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise DatasourceError(
            f"unusable answer to {_abbreviate(query)}: {error!r}"
        ) from error


def _form_encode(fields: Mapping[str, str]) -> str:
    """``application/x-www-form-urlencoded`` text of ``fields``: ``&``, ``=``, ``;``,
    ``+``, ``%`` and ``#`` escaped, and everything a query string may not hold."""
    return URL.build(query=dict(fields)).raw_query_string


def tagged_union(exprs: Sequence[str]) -> str:
    """One query answering every expression, its series tagged with their index.

    Each expression sits on lines of its own so that a ``#`` comment in it ends
    at its line and cannot swallow the rest of the query. The tags differ, so
    ``or`` keeps every series of every expression.
    """
    return "\nor\n".join(
        f'label_replace(\n{expr}\n, "{TAG_LABEL}", "{index}", "", "")'
        for index, expr in enumerate(exprs)
    )


def plan_batches(
    items: Sequence[tuple[str, str]], *, max_query_bytes: int, max_per_query: int
) -> list[list[tuple[str, str]]]:
    """Split tagged expressions into batches bounded by count and query length.

    An expression longer than the byte limit on its own still gets a batch.
    """
    if max_query_bytes < 1 or max_per_query < 1:
        raise ValueError("batch limits must be positive")
    batches: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    size = 0
    for item in items:
        cost = len(tagged_union([item[1]]).encode()) + len("\nor\n")
        if current and (len(current) >= max_per_query or size + cost > max_query_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += cost
    if current:
        batches.append(current)
    return batches


def _untag(
    samples: list[InstantSample], *, batch: Sequence[tuple[str, str]], query: str
) -> dict[str, list[InstantSample]]:
    by_tag: dict[str, list[InstantSample]] = {tag: [] for tag, _ in batch}
    for sample in samples:
        labels = dict(sample.labels)
        index = labels.pop(TAG_LABEL, None)
        if index is None or not index.isdigit() or int(index) >= len(batch):
            raise DatasourceError(
                f"series {sample.selector()} lost its {TAG_LABEL} label; "
                f"query: {_abbreviate(query)}"
            )
        by_tag[batch[int(index)][0]].append(
            InstantSample(labels, sample.timestamp, sample.value)
        )
    return by_tag


def _merge(
    parts: Sequence[tuple[dict[str, list[InstantSample]], dict[str, QueryRejected]]],
) -> tuple[dict[str, list[InstantSample]], dict[str, QueryRejected]]:
    series: dict[str, list[InstantSample]] = {}
    rejected: dict[str, QueryRejected] = {}
    for part_series, part_rejected in parts:
        series.update(part_series)
        rejected.update(part_rejected)
    return series, rejected


@dataclass
class BatchResult(Mapping[str, list[InstantSample]]):
    """Tag → series; a tag whose expression Prometheus rejected raises on lookup.

    ``result[tag]`` is ``[]`` when the expression's series are absent, one sample
    per series otherwise (so idle traffic reads as a sample valued 0). ``rejected``
    holds the tags whose expressions failed, with the error for each.
    """

    series: dict[str, list[InstantSample]] = field(default_factory=dict)
    rejected: dict[str, QueryRejected] = field(default_factory=dict)

    def add(
        self,
        series: Mapping[str, list[InstantSample]],
        rejected: Mapping[str, QueryRejected],
    ) -> None:
        self.series.update(series)
        self.rejected.update(rejected)

    def __getitem__(self, tag: str) -> list[InstantSample]:
        if tag in self.rejected:
            raise self.rejected[tag]
        return self.series[tag]

    def __iter__(self) -> Iterator[str]:
        yield from self.series
        yield from self.rejected

    def __len__(self) -> int:
        return len(self.series) + len(self.rejected)
