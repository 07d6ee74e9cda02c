"""How a budget snapshot is laid out in its table row, and read back.

A snapshot has a part that follows from its SLO's definition (objective, window,
budgeting method, the windows of its burn rates, the rows of its alert table) and a
part that each evaluation measures. The first, its *shape*, is stored once in
``snapshot_shapes`` under a digest of its JSON; many SLOs share one. A row carries
the digest, the figures that have columns of their own (status, remaining, consumed,
sli, the two instants, reason, notes) and the rest of the measured numbers packed
as big-endian float64 (PostgreSQL's own float8 wire format), NaN standing for a
missing figure:

    good, bad, total, one burn rate per burn window, then per alert row:
    long-window burn rate, short-window burn rate, 1.0 if firing else 0.0

A row of a google-preset SLO is about 320 bytes, not the 1,160 it was with the
snapshot's JSON, and a write of snapshots pays for its bytes twice, in the table
and in the WAL.

Rows stored before this layout hold the snapshot's JSON in ``snapshot`` and are
read as they were.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from sla.errors import StoreError
from sla.model.snapshot import BudgetSnapshot

SNAPSHOT_COLUMNS: Final = (
    "slo",
    "evaluated_at",
    "status",
    "remaining",
    "consumed",
    "sli",
    "shape",
    "figures",
    "exhaustion_eta",
    "window_start",
    "reason",
    "notes",
)

SNAPSHOT_ROW: Final = """
stored.slo, stored.evaluated_at, stored.status, stored.remaining, stored.consumed,
stored.sli, stored.figures, stored.exhaustion_eta, stored.window_start,
stored.reason, stored.notes, stored.snapshot, snapshot_shapes.definition
"""
"""What :func:`snapshot_from_row` reads: a select list over ``budget_snapshots AS
stored LEFT JOIN snapshot_shapes USING (shape)``."""

SHAPE_CACHE_SIZE: Final = 4096
"""Shapes kept in memory per process; one per distinct SLO definition shape."""

_MISSING: Final = math.nan


@dataclass(frozen=True, slots=True)
class Shape:
    """The part of a snapshot its SLO's definition decides."""

    digest: bytes
    definition: str
    """JSON, the text stored in ``snapshot_shapes``."""


def snapshot_rows(
    snapshots: Iterable[BudgetSnapshot],
) -> tuple[list[tuple[object, ...]], dict[bytes, str]]:
    """Rows in the order of :data:`SNAPSHOT_COLUMNS`, and the shapes they name."""
    rows: list[tuple[object, ...]] = []
    shapes: dict[bytes, str] = {}
    for snapshot in snapshots:
        shape = _shape_of(snapshot)
        shapes[shape.digest] = shape.definition
        rows.append(_row(snapshot, shape.digest))
    return rows, shapes


def _shape_of(snapshot: BudgetSnapshot) -> Shape:
    return _shape(
        snapshot.version,
        snapshot.objective,
        snapshot.window,
        snapshot.budgeting_method,
        tuple(snapshot.burn_rates),
        tuple(
            [
                (alert.severity, alert.long_window, alert.short_window, alert.factor)
                for alert in snapshot.alerts
            ]
        ),
    )


@lru_cache(maxsize=SHAPE_CACHE_SIZE)
def _shape(
    version: int,
    objective: float,
    window: str,
    budgeting_method: str,
    burn_windows: tuple[str, ...],
    alerts: tuple[tuple[str, str, str, float], ...],
) -> Shape:
    definition = json.dumps(
        {
            "version": version,
            "objective": objective,
            "window": window,
            "budgeting_method": budgeting_method,
            "burn_windows": burn_windows,
            "alerts": alerts,
        },
        separators=(",", ":"),
    )
    # 128 bits: a collision among the few thousand shapes a store ever holds is
    # about 1 in 10^31.
    digest = hashlib.blake2b(definition.encode(), digest_size=16).digest()
    return Shape(digest=digest, definition=definition)


def _row(snapshot: BudgetSnapshot, shape: bytes) -> tuple[object, ...]:
    events = snapshot.events
    figures: list[float | None] = [events.good, events.bad, events.total]
    figures.extend(snapshot.burn_rates.values())
    for alert in snapshot.alerts:
        figures.append(alert.long_burn_rate)
        figures.append(alert.short_burn_rate)
        figures.append(1.0 if alert.firing else 0.0)
    budget = snapshot.error_budget
    return (
        snapshot.slo,
        snapshot.evaluated_at,
        snapshot.status,
        budget.remaining,
        budget.consumed,
        snapshot.sli,
        shape,
        _pack(figures),
        snapshot.exhaustion_eta,
        snapshot.window_start,
        None if snapshot.reason is None else _storable(snapshot.reason),
        [_storable(note) for note in snapshot.notes] if snapshot.notes else None,
    )


def _storable(text: str) -> str:
    # PostgreSQL's text cannot hold NUL, and a reason may quote a datasource's
    # answer: the snapshot is kept, with the character replaced.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _pack(figures: list[float | None]) -> bytes:
    if None in figures:
        figures = [_MISSING if value is None else value for value in figures]
    return _packer(len(figures)).pack(*figures)


@lru_cache(maxsize=64)
def _packer(count: int) -> struct.Struct:
    return struct.Struct(f">{count}d")


def snapshot_from_row(row: Mapping[str, Any]) -> BudgetSnapshot:
    """The snapshot a row of ``budget_snapshots`` holds, joined with its shape's
    ``definition``; either layout."""
    if row["snapshot"] is not None:
        return BudgetSnapshot.model_validate_json(row["snapshot"])
    where = f"the snapshot of {row['slo']} at {row['evaluated_at'].isoformat()}"
    if row["definition"] is None:
        raise StoreError(f"{where} names a shape that is not stored")
    shape = _parsed_shape(row["definition"])
    burn_windows: list[str] = shape["burn_windows"]
    alert_rows: list[list[Any]] = shape["alerts"]
    figures = _unpack(row["figures"])
    needed = 3 + len(burn_windows) + 3 * len(alert_rows)
    if figures is None or len(figures) != needed:
        raise StoreError(
            f"{where} holds {len(row['figures'])} bytes of figures; "
            f"its shape needs {needed} float64s ({8 * needed} bytes)"
        )
    good, bad, total = figures[:3]
    rates = figures[3 : 3 + len(burn_windows)]
    states = figures[3 + len(burn_windows) :]
    return BudgetSnapshot.model_validate(
        {
            "version": shape["version"],
            "slo": row["slo"],
            "evaluated_at": row["evaluated_at"],
            "objective": shape["objective"],
            "window": shape["window"],
            "budgeting_method": shape["budgeting_method"],
            "status": row["status"],
            "sli": row["sli"],
            "events": {"good": good, "bad": bad, "total": total},
            "error_budget": {
                "consumed": row["consumed"],
                "remaining": row["remaining"],
            },
            "burn_rates": dict(zip(burn_windows, rates, strict=True)),
            "alerts": [
                {
                    "severity": severity,
                    "long_window": long_window,
                    "short_window": short_window,
                    "factor": factor,
                    "long_burn_rate": states[3 * n],
                    "short_burn_rate": states[3 * n + 1],
                    "firing": states[3 * n + 2] == 1.0,
                }
                for n, (severity, long_window, short_window, factor) in enumerate(
                    alert_rows
                )
            ],
            "exhaustion_eta": row["exhaustion_eta"],
            "window_start": row["window_start"],
            "reason": row["reason"],
            "notes": row["notes"] or [],
        }
    )


@lru_cache(maxsize=SHAPE_CACHE_SIZE)
def _parsed_shape(definition: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(definition)
    return parsed


def _unpack(packed: bytes) -> list[float | None] | None:
    """The figures; None when the bytes are not a whole number of float64s."""
    count, remainder = divmod(len(packed), 8)
    if remainder:
        return None
    return [None if math.isnan(v) else v for v in _packer(count).unpack(packed)]
