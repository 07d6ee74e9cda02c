"""budget-api's reads and its override, over the store and the budget cache.

Every function here takes the store (and the cache, for the latest budgets) and
returns the response models of :mod:`sla.model.api`; the HTTP layer
(:mod:`sla.runtime.budget_api`) only parses requests and writes answers. Wrong input
raises :class:`InvalidInput` naming the parameter; an unknown SLO or policy raises
:class:`NotFound`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from sla.clients.store import CatalogueEntry, FreezeState, ManualOverride, Store
from sla.errors import SLAError
from sla.model.api import (
    MAX_OVERRIDE_DAYS,
    AuditPage,
    AuditQuery,
    AuditView,
    EventRef,
    Freezes,
    FreezeView,
    History,
    HistoryPoint,
    OverrideClearRequest,
    OverrideRequest,
    OverrideResult,
    OverrideView,
    SloDetail,
    SloPage,
    SloQuery,
    SloSummary,
)
from sla.model.durations import format_duration, parse_duration
from sla.model.freeze import OutgoingEvent
from sla.model.snapshot import BudgetSnapshot
from sla.services.policy_evaluation import (
    EvaluationResult,
    clear_override,
    set_override,
)

DEFAULT_HISTORY: Final = timedelta(hours=24)
DEFAULT_RECENT: Final = timedelta(days=7)

MAX_POINTS: Final = 11_000
"""Points one history answer carries: Prometheus' own limit for a range query, which
graphing tools are built around."""

MAX_HISTORY_ROWS: Final = 50_400
"""Snapshots read for one downsampled history: 35 days (the default retention) at
one per minute."""


class InvalidInput(SLAError, ValueError):
    """A parameter or body field that can never be accepted as given."""

    def __init__(self, message: str, *, field: str | None, status: int = 400):
        self.field = field
        self.status = status
        super().__init__(message)


class NotFound(SLAError):
    """No SLO or policy of that name in the catalogue."""


class LatestBudgets(Protocol):
    """:class:`~sla.clients.cache.BudgetCache`: Redis first, then the store."""

    async def get_latest(self, slos: Sequence[str]) -> dict[str, BudgetSnapshot]: ...


# -- times and durations ----------------------------------------------------------


def parse_instant(text: str, *, field: str) -> datetime:
    """RFC 3339 (with ``Z`` or an offset) or Unix seconds, as an aware UTC time."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _rfc3339(value, field=field)
    if not math.isfinite(seconds) or abs(seconds) > 253_402_300_799:
        raise InvalidInput(f"{text!r} is not a time", field=field)
    return datetime.fromtimestamp(seconds, UTC)


def _rfc3339(value: str, *, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(
            f"{value!r} is not an RFC 3339 time with Z or an offset, nor Unix seconds",
            field=field,
        )
    return moment.astimezone(UTC)


def parse_step(text: str) -> int:
    """A Prometheus duration (``5m``) or whole seconds (``300``)."""
    value = text.strip()
    try:
        seconds = int(value) if value.isdigit() else parse_duration(value)
    except ValueError as error:
        raise InvalidInput(str(error), field="step") from None
    if seconds <= 0:
        raise InvalidInput("step must be a positive duration", field="step")
    return seconds


# -- SLOs -------------------------------------------------------------------------


def _spec(entry: CatalogueEntry) -> dict[str, Any]:
    spec = entry.document.get("spec")
    return spec if isinstance(spec, dict) else {}


def slo_labels(entry: CatalogueEntry) -> dict[str, str]:
    """The spec's ``labels`` overlaid with the object's metadata labels (those
    policies select on), so a filter finds an SLO by either."""
    spec_labels = _spec(entry).get("labels")
    merged = dict(spec_labels) if isinstance(spec_labels, dict) else {}
    merged.update(entry.labels)
    return {str(key): str(value) for key, value in merged.items()}


def summarise(entry: CatalogueEntry, snapshot: BudgetSnapshot | None) -> SloSummary:
    """An SLO's row: a catalogue entry and its newest snapshot, if any."""
    spec = _spec(entry)
    service = spec.get("service")
    objective = spec.get("objective")
    window = spec.get("window")
    return SloSummary(
        slo=entry.key,
        namespace=entry.namespace,
        name=entry.name,
        service=str(service) if service is not None else None,
        labels=slo_labels(entry),
        objective=float(objective) if isinstance(objective, int | float) else None,
        window=str(window) if window is not None else None,
        status=snapshot.status if snapshot else "no_data",
        remaining=snapshot.error_budget.remaining if snapshot else None,
        consumed=snapshot.error_budget.consumed if snapshot else None,
        sli=snapshot.sli if snapshot else None,
        burn_rates=dict(snapshot.burn_rates) if snapshot else {},
        evaluated_at=snapshot.evaluated_at if snapshot else None,
        validation_error=entry.validation_error,
    )


def budget_order(summary: SloSummary) -> tuple[bool, float, str]:
    """Least budget remaining first; SLOs without a figure (no data) last."""
    missing = summary.remaining is None
    return (missing, 0.0 if missing else float(summary.remaining or 0.0), summary.slo)


async def slo_summaries(
    store: Store, budgets: LatestBudgets, *, namespace: str | None = None
) -> list[SloSummary]:
    """Every SLODefinition (of one namespace, or all) with its latest budget,
    least remaining first."""
    entries = await store.list_catalogue(kind="SLODefinition", namespace=namespace)
    latest = await budgets.get_latest([entry.key for entry in entries])
    summaries = [summarise(entry, latest.get(entry.key)) for entry in entries]
    return sorted(summaries, key=budget_order)


def parse_labels(terms: Iterable[str]) -> dict[str, str]:
    """``["team=payments", "tier=1"]`` → a mapping every SLO label must match."""
    wanted: dict[str, str] = {}
    for term in terms:
        key, _, value = term.partition("=")
        if not key.strip():
            raise InvalidInput(f"{term!r} is not key=value", field="label")
        wanted[key.strip()] = value.strip()
    return wanted


def matches(summary: SloSummary, query: SloQuery, labels: dict[str, str]) -> bool:
    if query.service is not None and summary.service != query.service:
        return False
    if query.status is not None and summary.status != query.status:
        return False
    return all(summary.labels.get(key) == value for key, value in labels.items())


def encode_cursor(offset: int) -> str:
    """Opaque to clients: an offset into the sorted list, as base64 JSON."""
    text = json.dumps({"offset": offset}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidInput("not a cursor this API gave out", field="cursor") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidInput("not a cursor this API gave out", field="cursor")
    return offset


def paginate(items: Sequence[SloSummary], *, limit: int, cursor: str | None) -> SloPage:
    """One page of ``limit`` items. The cursor is an offset: budgets move between
    pages, so an SLO may show twice or be skipped while they do, as with any
    ordering by a live figure."""
    offset = 0 if cursor is None else decode_cursor(cursor)
    page = list(items[offset : offset + limit])
    following = offset + limit
    return SloPage(
        items=page,
        total=len(items),
        next_cursor=encode_cursor(following) if following < len(items) else None,
    )


async def list_slos(store: Store, budgets: LatestBudgets, query: SloQuery) -> SloPage:
    """``GET /slos``: filtered, least budget first, one page."""
    labels = parse_labels(query.label)
    summaries = await slo_summaries(store, budgets, namespace=query.namespace)
    chosen = [s for s in summaries if matches(s, query, labels)]
    return paginate(chosen, limit=query.limit, cursor=query.cursor)


async def _slo_entry(store: Store, namespace: str, name: str) -> CatalogueEntry:
    entries = await store.list_catalogue(kind="SLODefinition", namespace=namespace)
    found = next((entry for entry in entries if entry.name == name), None)
    if found is None:
        raise NotFound(f"no SLODefinition {namespace}/{name}")
    return found


async def slo_detail(
    store: Store, budgets: LatestBudgets, namespace: str, name: str
) -> SloDetail:
    """``GET /slos/{namespace}/{name}``: the definition and the latest budget."""
    entry = await _slo_entry(store, namespace, name)
    latest = await budgets.get_latest([entry.key])
    return SloDetail(
        slo=entry.key,
        namespace=entry.namespace,
        name=entry.name,
        labels=slo_labels(entry),
        definition=_spec(entry),
        validation_error=entry.validation_error,
        budget=latest.get(entry.key),
    )


# -- history ----------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRange:
    start: datetime
    end: datetime
    step: int | None = None

    @classmethod
    def parse(
        cls,
        start: str | None,
        end: str | None,
        step: str | None,
        *,
        now: datetime,
    ) -> HistoryRange:
        """Defaults: the 24 hours up to now, every snapshot."""
        until = now if end is None else parse_instant(end, field="to")
        since = (
            until - DEFAULT_HISTORY
            if start is None
            else parse_instant(start, field="from")
        )
        if since > until:
            raise InvalidInput("from is after to", field="from")
        seconds = None if step is None else parse_step(step)
        if (
            seconds is not None
            and (until - since).total_seconds() / seconds > MAX_POINTS
        ):
            raise InvalidInput(
                f"more than {MAX_POINTS} steps between from and to; take a longer step",
                field="step",
            )
        return cls(since, until, seconds)


def downsample(
    snapshots: Sequence[BudgetSnapshot], *, start: datetime, step: int
) -> list[BudgetSnapshot]:
    """The last snapshot of each step, steps counted from ``start``; snapshots are
    oldest first. Empty steps stay empty: a gap in the graph is a gap in the data."""
    last: dict[int, BudgetSnapshot] = {}
    for snapshot in snapshots:
        index = int((snapshot.evaluated_at - start).total_seconds() // step)
        last[index] = snapshot
    return [last[index] for index in sorted(last)]


def _point(snapshot: BudgetSnapshot) -> HistoryPoint:
    return HistoryPoint(
        evaluated_at=snapshot.evaluated_at,
        status=snapshot.status,
        remaining=snapshot.error_budget.remaining,
        consumed=snapshot.error_budget.consumed,
        sli=snapshot.sli,
        burn_rates=dict(snapshot.burn_rates),
    )


async def slo_history(
    store: Store, namespace: str, name: str, span: HistoryRange
) -> History:
    """``GET /slos/{namespace}/{name}/history``: budgets over time, for a graph."""
    entry = await _slo_entry(store, namespace, name)
    rows = MAX_POINTS if span.step is None else MAX_HISTORY_ROWS
    snapshots = await store.history(
        entry.key, start=span.start, end=span.end, limit=rows + 1
    )
    truncated = len(snapshots) > rows
    kept = snapshots[:rows]
    if span.step is not None:
        kept = downsample(kept, start=span.start, step=span.step)
    return History(
        slo=entry.key,
        start=span.start,
        end=span.end,
        step=None if span.step is None else format_duration(span.step),
        points=[_point(snapshot) for snapshot in kept],
        truncated=truncated,
    )


# -- freezes and audit --------------------------------------------------------------


def _since(state: FreezeState) -> datetime | None:
    stamp = state.details.get("frozen_since")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def freeze_view(state: FreezeState) -> FreezeView:
    mode = state.details.get("mode")
    return FreezeView(
        policy=state.policy,
        namespace=state.policy.partition("/")[0],
        scope=state.scope,
        state=state.state,
        since=_since(state) if state.state == "frozen" else None,
        decided_at=state.decided_at,
        decision_seq=state.decision_seq,
        reason=state.reason,
        mode=str(mode) if mode is not None else None,
        dry_run=bool(state.details.get("dry_run", False)),
    )


def override_view(override: ManualOverride) -> OverrideView:
    return OverrideView(
        policy=override.policy,
        action=override.action,
        expires_at=override.expires_at,
        reason=override.reason,
        actor=override.actor,
        created_at=override.created_at,
    )


def _in_namespace(policy: str, namespace: str | None) -> bool:
    return namespace is None or policy.partition("/")[0] == namespace


async def list_freezes(
    store: Store, *, now: datetime, namespace: str | None, since: str | None
) -> Freezes:
    """``GET /freezes``: freezes in force, those lifted since ``since``, and the
    manual overrides in force."""
    cutoff = (
        now - DEFAULT_RECENT if since is None else parse_instant(since, field="since")
    )
    states = [
        s for s in await store.freeze_states() if _in_namespace(s.policy, namespace)
    ]
    overrides = await store.active_overrides(now=now)
    return Freezes(
        active=[freeze_view(s) for s in states if s.state == "frozen"],
        recent=[
            freeze_view(s)
            for s in states
            if s.state == "lifted" and s.decided_at >= cutoff
        ],
        overrides=[
            override_view(o) for o in overrides if _in_namespace(o.policy, namespace)
        ],
    )


async def read_audit(store: Store, query: AuditQuery) -> AuditPage:
    """``GET /audit``: entries oldest first, filtered."""
    since = None if query.since is None else parse_instant(query.since, field="since")
    until = None if query.until is None else parse_instant(query.until, field="until")
    entries = await store.audit_log(
        subject=query.subject,
        kind=query.kind,
        since=since,
        until=until,
        limit=query.limit,
    )
    return AuditPage(
        entries=[
            AuditView(
                id=entry.id,
                at=entry.at,
                actor=entry.actor,
                kind=entry.kind,
                subject=entry.subject,
                outcome=entry.outcome,
                inputs=entry.inputs,
                reasons=list(entry.reasons),
            )
            for entry in entries
        ]
    )


# -- overrides ----------------------------------------------------------------------


@dataclass(frozen=True)
class OverrideOutcome:
    """The answer to give, and the events the new decision emits."""

    result: OverrideResult
    events: list[OutgoingEvent] = field(default_factory=list)


async def _known_policy(store: Store, namespace: str, name: str) -> str:
    entries = await store.list_catalogue(kind="SLAPolicy", namespace=namespace)
    found = next((entry for entry in entries if entry.name == name), None)
    if found is None:
        raise NotFound(f"no SLAPolicy {namespace}/{name}")
    if found.validation_error is not None:
        raise InvalidInput(
            f"SLAPolicy {found.key} is not valid, so no decision can be made: "
            f"{found.validation_error}",
            field=None,
            status=409,
        )
    return found.key


async def _outcome(
    store: Store, policy: str, evaluation: EvaluationResult, *, now: datetime
) -> OverrideOutcome:
    in_force = await store.active_overrides(now=now, policy=policy)
    decision = evaluation.decisions[0].decision if evaluation.decisions else None
    result = OverrideResult(
        policy=policy,
        override=override_view(in_force[0]) if in_force else None,
        state=None if decision is None else decision.state,
        events=[EventRef(type=e.type, id=e.id) for e in evaluation.events],
        events_posted=False,
    )
    return OverrideOutcome(result, list(evaluation.events))


async def put_override(
    store: Store,
    namespace: str,
    name: str,
    request: OverrideRequest,
    *,
    now: datetime,
) -> OverrideOutcome:
    """``POST /freezes/{namespace}/{policy}/override``: audited, decided again."""
    _check_expiry(request.expires_at, now=now)
    policy = await _known_policy(store, namespace, name)
    evaluation = await set_override(
        store=store,
        policy=policy,
        action=request.action,
        expires_at=request.expires_at,
        reason=request.reason,
        actor=request.actor,
        now=now,
    )
    return await _outcome(store, policy, evaluation, now=now)


def _check_expiry(expires_at: datetime, *, now: datetime) -> None:
    """In the future, and at most :data:`MAX_OVERRIDE_DAYS` after ``now``: an
    expiry in the year 9999 is a permanent override written as a temporary one."""
    if expires_at <= now:
        raise InvalidInput(
            "expires_at must be in the future", field="expires_at", status=422
        )
    latest = now + timedelta(days=MAX_OVERRIDE_DAYS)
    if expires_at > latest:
        raise InvalidInput(
            f"expires_at {expires_at:%Y-%m-%dT%H:%M:%SZ} is more than "
            f"{MAX_OVERRIDE_DAYS} days ahead; the latest now is "
            f"{latest:%Y-%m-%dT%H:%M:%SZ}",
            field="expires_at",
            status=422,
        )


async def remove_override(
    store: Store,
    namespace: str,
    name: str,
    request: OverrideClearRequest,
    *,
    now: datetime,
) -> OverrideOutcome:
    """``DELETE /freezes/{namespace}/{policy}/override``: audited, decided again."""
    policy = await _known_policy(store, namespace, name)
    evaluation = await clear_override(
        store=store, policy=policy, actor=request.actor, reason=request.reason, now=now
    )
    return await _outcome(store, policy, evaluation, now=now)
