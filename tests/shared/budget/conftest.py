"""Builders for SLO definitions used across the budget tests."""

from __future__ import annotations

from typing import Any

from sla.model.slo import SLODefinition


def make_slo(**spec: Any) -> SLODefinition:
    """An availability SLO with the given spec fields overriding the defaults."""
    body: dict[str, Any] = {
        "service": "checkout",
        "objective": 99.9,
        "window": "30d",
        "indicator": {
            "ratio": {
                "bad": {"metric": 'http_requests_total{code=~"5.."}'},
                "total": {"metric": "http_requests_total"},
            }
        },
    }
    body.update(spec)
    return SLODefinition.model_validate(
        {
            "apiVersion": "sla.dev/v1alpha1",
            "kind": "SLODefinition",
            "metadata": {"name": "checkout-availability", "namespace": "shop"},
            "spec": body,
        }
    )
