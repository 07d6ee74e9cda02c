"""The event catalogue's data models: every type has one, ours carry a version."""

from __future__ import annotations

import re
from pathlib import Path

from sla.model.events import EVENT_DATA, ForeignData

DESIGN_TYPES = {
    "dev.knative.sources.ping",
    "dev.sla.slo.evaluate",
    "dev.sla.alert.received",
    "dev.sla.budget.calculated",
    "dev.sla.freeze.requested",
    "dev.sla.freeze.lifted",
    "dev.sla.freeze.applied",
    "dev.sla.freeze.released",
    "dev.sla.freeze.failed",
    "dev.sla.slo.violated",
    "dev.sla.freeze.breached",
    "dev.sla.deployment.started",
    "dev.knative.kafka.event",
    "dev.knative.apiserver.resource.add",
    "dev.knative.apiserver.resource.update",
    "dev.knative.apiserver.resource.delete",
}
"""The design's event catalogue, written out."""


def test_every_catalogued_type_has_a_data_model() -> None:
    assert set(EVENT_DATA) == DESIGN_TYPES


def test_every_event_of_the_system_carries_a_version() -> None:
    ours = {
        name: model for name, model in EVENT_DATA.items() if name.startswith("dev.sla.")
    }
    for name, model in ours.items():
        if name == "dev.sla.deployment.started":
            continue  # posted by CI/CD pipelines in the design's deployment shape
        assert "version" in model.model_fields, name
        assert model.model_fields["version"].default == 1, name


def test_foreign_events_keep_unknown_fields() -> None:
    for name in ("dev.knative.sources.ping", "dev.knative.apiserver.resource.add"):
        assert issubclass(EVENT_DATA[name], ForeignData)


def test_every_type_the_triggers_route_has_a_model() -> None:
    triggers = Path(__file__).resolve().parents[3] / "eventing" / "triggers.yaml"
    routed = set(re.findall(r"type: (\S+)", triggers.read_text()))
    assert routed <= set(EVENT_DATA)
