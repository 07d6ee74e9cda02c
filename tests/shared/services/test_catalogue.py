"""Catalogue rows from cluster objects, relist plans and status write-back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sla.clients.store import CatalogueEntry
from sla.services.catalogue import entry_from_object, plan_relist, status_patch
from tests.support.snapshots import budget_snapshot

AT = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=300)


def obj(name: str, *, generation: int = 1, objective: float = 99) -> dict[str, Any]:
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": "SLODefinition",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "generation": generation,
            "resourceVersion": "42",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {
            "service": "s",
            "objective": objective,
            "window": "7d",
            "indicator": {"raw": {"errorRatio": "x[$window]"}},
        },
        "status": {"status": "healthy"},
    }


def entry(
    name: str, *, generation: int = 1, source: str = "kubernetes"
) -> CatalogueEntry:
    return entry_from_object(obj(name, generation=generation), source=source)


def test_an_entry_keeps_what_defines_the_object_only() -> None:
    row = entry("api")

    assert row.validation_error is None
    assert row.document["metadata"] == {
        "name": "api",
        "namespace": "shop",
        "generation": 1,
    }
    assert "status" not in row.document


def test_an_invalid_object_becomes_an_entry_with_its_error() -> None:
    row = entry_from_object(obj("api", objective=100), source="kubernetes")

    assert row.validation_error is not None
    assert row.validation_error.startswith("spec.objective")


def test_an_entry_error_reads_as_the_validator_wrote_it() -> None:
    document = obj("api")
    document["spec"]["window"] = "5x"

    row = entry_from_object(document, source="kubernetes")

    assert row.validation_error == (
        "spec.window: '5x' is not a duration like 5m, 1h30m, 28d or 4w"
    )


def test_relist_writes_changed_and_missing_rows_and_drops_gone_cluster_rows() -> None:
    stored = [entry("same"), entry("old"), entry("gone"), entry("mine", source="file")]
    listed = [entry("same"), entry("old", generation=2), entry("new")]

    plan = plan_relist(stored, listed)

    assert [row.name for row in plan.upserts] == ["old", "new"]
    assert plan.deletes == [("SLODefinition", "shop", "gone")]


def test_a_status_patch_carries_the_budget_in_percent() -> None:
    """999 good of 1,000 at 99 %: e = 0.001, consumed = 0.1, remaining = 90 %."""
    snapshot = budget_snapshot("shop/api", AT)

    patch, _ = status_patch(snapshot, current=None, generation=3, min_interval=INTERVAL)

    assert patch is not None
    assert patch["budgetRemaining"] == 90.0
    assert patch["observedGeneration"] == 3
    assert patch["lastEvaluated"] == "2026-01-03T12:00:00Z"
    assert patch["burnRates"] == {"1h": 0.1}


def test_windows_no_longer_reported_are_removed_from_the_status() -> None:
    snapshot = budget_snapshot("shop/api", AT)
    current = {"lastEvaluated": "2026-01-03T11:00:00Z", "burnRates": {"5m": 2.0}}

    patch, _ = status_patch(
        snapshot, current=current, generation=1, min_interval=INTERVAL
    )

    assert patch is not None
    assert patch["burnRates"] == {"1h": 0.1, "5m": None}


def test_an_older_or_equal_snapshot_writes_nothing() -> None:
    snapshot = budget_snapshot("shop/api", AT)
    current = {"lastEvaluated": "2026-01-03T12:00:00Z", "status": "warning"}

    patch, reason = status_patch(
        snapshot, current=current, generation=1, min_interval=INTERVAL
    )

    assert patch is None
    assert "newer" in reason


def test_the_same_status_within_the_interval_writes_nothing() -> None:
    snapshot = budget_snapshot("shop/api", AT)
    current = {"lastEvaluated": "2026-01-03T11:56:00Z", "status": "healthy"}

    patch, _ = status_patch(
        snapshot, current=current, generation=1, min_interval=INTERVAL
    )

    assert patch is None
