"""The event mesh as the manifests in ``eventing/`` declare it, read for ``sla dev``.

The local broker routes by the same Triggers, retries by the same delivery spec
and ticks by the same PingSources that a cluster runs, so a Trigger removed from
``eventing/`` stops the delivery on one machine too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sla.errors import SpecError

DEFAULT_NAMESPACE = "default"
# ISO 8601 durations as Knative's delivery spec writes them (PT1S, PT0.5S, PT2M).
_ISO_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


@dataclass(frozen=True)
class Delivery:
    """Knative's DeliverySpec: retries after the first attempt, and their backoff."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay: float = 0.2
    dead_letter: str | None = None

    def delay(self, attempt: int) -> float:
        """Seconds before retry ``attempt`` (1 for the first retry)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * attempt
        return float(self.backoff_delay * 2 ** (attempt - 1))


@dataclass(frozen=True)
class Trigger:
    name: str
    broker: str
    attributes: Mapping[str, str]
    filters: Sequence[Mapping[str, Any]]
    subscriber: str
    """A Knative Service name, ``kafkasink:<name>``, or a URL."""
    delivery: Delivery | None = None


@dataclass(frozen=True)
class PingSource:
    name: str
    schedule: str
    timezone: str
    data: str | None
    namespace: str

    @property
    def source(self) -> str:
        """The CloudEvent source a PingSource gives its events."""
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"


@dataclass(frozen=True)
class Mesh:
    namespace: str
    triggers: tuple[Trigger, ...]
    pings: tuple[PingSource, ...]
    delivery: Delivery
    topics: Mapping[str, str] = field(default_factory=dict)
    """KafkaSink name → topic."""


def iso_seconds(text: str) -> float:
    match = _ISO_DURATION.match(text.strip())
    if not match:
        raise SpecError(f"{text!r} is not an ISO 8601 duration like PT1S")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return (
        parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )


def load_mesh(directory: Path) -> Mesh:
    """Read every Trigger, Broker, PingSource and KafkaSink under ``directory``."""
    documents = _documents(directory)
    namespace = _namespace(directory)
    brokers = [d for d in documents if d.get("kind") == "Broker"]
    broker_delivery = (
        _delivery(brokers[0].get("spec", {}).get("delivery")) if brokers else Delivery()
    )
    triggers = tuple(
        _trigger(d, source=str(directory))
        for d in documents
        if d.get("kind") == "Trigger"
    )
    pings = tuple(
        _ping(d, namespace) for d in documents if d.get("kind") == "PingSource"
    )
    topics = {
        d["metadata"]["name"]: d["spec"]["topic"]
        for d in documents
        if d.get("kind") == "KafkaSink"
    }
    return Mesh(
        namespace=namespace,
        triggers=triggers,
        pings=pings,
        delivery=broker_delivery or Delivery(),
        topics=topics,
    )


def _documents(directory: Path) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def _namespace(directory: Path) -> str:
    kustomization = directory / "kustomization.yaml"
    if kustomization.exists():
        body = yaml.safe_load(kustomization.read_text()) or {}
        return str(body.get("namespace", DEFAULT_NAMESPACE))
    return DEFAULT_NAMESPACE


def _delivery(spec: Mapping[str, Any] | None) -> Delivery:
    if not spec:
        return Delivery()
    dead_letter = spec.get("deadLetterSink", {}).get("ref", {}).get("name")
    return Delivery(
        retry=int(spec.get("retry", 0)),
        backoff_policy=str(spec.get("backoffPolicy", "exponential")),
        backoff_delay=iso_seconds(str(spec.get("backoffDelay", "PT0.2S"))),
        dead_letter=dead_letter,
    )


def _trigger(document: Mapping[str, Any], *, source: str) -> Trigger:
    name = document["metadata"]["name"]
    spec = document.get("spec", {})
    subscriber = spec.get("subscriber", {})
    ref = subscriber.get("ref")
    if ref:
        kind = ref.get("kind", "")
        target = f"kafkasink:{ref['name']}" if kind == "KafkaSink" else ref["name"]
    elif subscriber.get("uri"):
        target = subscriber["uri"]
    else:
        raise SpecError("a Trigger needs spec.subscriber", source=source, field=name)
    return Trigger(
        name=name,
        broker=spec.get("broker", "default"),
        attributes=dict(spec.get("filter", {}).get("attributes", {}) or {}),
        filters=list(spec.get("filters", []) or []),
        subscriber=target,
        delivery=_delivery(spec["delivery"]) if spec.get("delivery") else None,
    )


def _ping(document: Mapping[str, Any], namespace: str) -> PingSource:
    spec = document.get("spec", {})
    return PingSource(
        name=document["metadata"]["name"],
        schedule=spec["schedule"],
        timezone=spec.get("timezone", "UTC"),
        data=spec.get("data"),
        namespace=document["metadata"].get("namespace", namespace),
    )


def matches(trigger: Trigger, attributes: Mapping[str, Any]) -> bool:
    """Knative's rules: ``filters`` (the new dialects) win over ``filter``."""
    if trigger.filters:
        return all(_dialect(f, attributes) for f in trigger.filters)
    return all(
        str(attributes.get(name, "")) == value if value else name in attributes
        for name, value in trigger.attributes.items()
    )


def _dialect(expression: Mapping[str, Any], attributes: Mapping[str, Any]) -> bool:
    (dialect, body), *rest = expression.items()
    if rest:
        raise SpecError(f"a filter names one dialect, got {list(expression)}")
    if dialect in ("exact", "prefix", "suffix"):
        return all(_compare(dialect, attributes.get(k), v) for k, v in body.items())
    if dialect == "all":
        return all(_dialect(item, attributes) for item in body)
    if dialect == "any":
        return any(_dialect(item, attributes) for item in body)
    if dialect == "not":
        return not _dialect(body, attributes)
    raise SpecError(f"filter dialect {dialect!r} is not supported by sla dev")


def _compare(dialect: str, actual: Any, expected: str) -> bool:
    if actual is None:
        return False
    text = str(actual)
    if dialect == "exact":
        return text == expected
    if dialect == "prefix":
        return text.startswith(expected)
    return text.endswith(expected)
