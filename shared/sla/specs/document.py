"""Source documents, and the findings reported against them.

A finding is an *error* when the document cannot become a native object that
measures what its author meant; it is a *note* when something was left out,
rewritten or defaulted without changing what is measured. See ``sla.specs``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from sla.errors import SpecError
from sla.model.policy import SLAPolicy
from sla.model.slo import SLODefinition

NativeObject = SLODefinition | SLAPolicy
Severity = Literal["error", "note"]


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()
"""Marks a finding that has no offending value to show."""

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_VALUE_WIDTH = 120


@dataclass(frozen=True)
class Finding:
    """One error or note: where (file, line, document, field), what, and the value."""

    severity: Severity
    file: str
    line: int | None
    document: str
    field: str
    message: str
    value: Any = NO_VALUE

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where, self.document, self.field, self.message]
        text = ": ".join(part for part in parts if part)
        if self.value is not NO_VALUE:
            text += f" (value: {show_value(self.value)})"
        return text

    def to_spec_error(self) -> SpecError:
        where = f"{self.file}:{self.line}" if self.line else self.file
        source = f"{where}: {self.document}" if self.document else where
        value = None if self.value is NO_VALUE else self.value
        return SpecError(self.message, source=source, field=self.field, value=value)


def show_value(value: Any) -> str:
    """A short one-line rendering of a bad value, the way YAML would show it."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, dict | list):
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) > _VALUE_WIDTH:
        text = text[: _VALUE_WIDTH - 1] + "…"
    return text


@dataclass(frozen=True)
class SourceDocument:
    """One YAML document of a file, or one object of a document that is a list."""

    file: str
    number: int
    body: dict[str, Any]
    node: yaml.Node | None = None
    item: int | None = None

    @property
    def api_version(self) -> str:
        value = self.body.get("apiVersion")
        return value if isinstance(value, str) else ""

    @property
    def kind(self) -> str:
        value = self.body.get("kind")
        return value if isinstance(value, str) else ""

    @property
    def name(self) -> str:
        metadata = self.body.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return name if isinstance(name, str) else ""

    @property
    def label(self) -> str:
        """``document 2`` or ``document 1 item 3``, with kind and name when known."""
        text = f"document {self.number}"
        if self.item is not None:
            text += f" item {self.item}"
        what = " ".join(part for part in (self.kind, self.name) if part)
        return f"{text} ({what})" if what else text

    def line_of(self, path: str) -> int | None:
        """The 1-based line of a field path, or of the nearest parent that exists."""
        node = self.node
        if node is None:
            return None
        best = node.start_mark.line + 1
        for key, index in _PATH_PART.findall(path):
            node = _child(node, key, index)
            if node is None:
                break
            best = node.start_mark.line + 1
        return best

    def finding(
        self, severity: Severity, path: str, message: str, value: Any = NO_VALUE
    ) -> Finding:
        return Finding(
            severity=severity,
            file=self.file,
            line=self.line_of(path),
            document=self.label,
            field=path,
            message=message,
            value=value,
        )

    def error(self, path: str, message: str, value: Any = NO_VALUE) -> Finding:
        return self.finding("error", path, message, value)

    def note(self, path: str, message: str, value: Any = NO_VALUE) -> Finding:
        return self.finding("note", path, message, value)


def _child(node: yaml.Node, key: str, index: str) -> yaml.Node | None:
    if index and isinstance(node, yaml.SequenceNode):
        position = int(index)
        return node.value[position] if position < len(node.value) else None
    if key and isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == key:
                return value_node  # type: ignore[no-any-return]
    return None


def join_path(*parts: str | int) -> str:
    """``join_path("spec", "slos", 0, "sli")`` → ``spec.slos[0].sli``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part:
            text = f"{text}.{part}" if text else part
    return text


@dataclass
class Conversion:
    """What one source document became: native objects and findings."""

    objects: list[NativeObject] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def extend(self, other: Conversion) -> None:
        self.objects.extend(other.objects)
        self.findings.extend(other.findings)

    @property
    def failed(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


class RunContext:
    """Every document of one run, so one document can refer to another.

    OpenSLO SLOs name SLIs, alert policies and data sources defined elsewhere;
    slo-generator SLOs take windows from a shared config file.
    """

    def __init__(self, documents: list[SourceDocument]) -> None:
        self.documents = documents

    def find(
        self, api_versions: tuple[str, ...], kind: str, name: str
    ) -> SourceDocument | None:
        """The first document of that kind and name, or None."""
        return next(self.all_of(api_versions, kind, name), None)

    def all_of(
        self, api_versions: tuple[str, ...], kind: str, name: str | None = None
    ) -> Iterator[SourceDocument]:
        for document in self.documents:
            if document.api_version not in api_versions or document.kind != kind:
                continue
            if name is None or document.name == name:
                yield document

    def where(
        self, predicate: Callable[[SourceDocument], bool]
    ) -> list[SourceDocument]:
        return [document for document in self.documents if predicate(document)]


def unknown_kind(
    document: SourceDocument, api_version: str, expected: str
) -> Conversion:
    """The conversion of a document whose kind its apiVersion does not have."""
    return Conversion(
        findings=[
            document.error(
                "kind",
                f"unknown kind for {api_version}: expected {expected}",
                document.kind,
            )
        ]
    )
