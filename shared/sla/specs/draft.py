"""Native documents under construction, and pydantic errors told in source terms.

An importer writes native fields into a ``Draft`` and says, for each, which
source field it came from. When the native model then rejects a value, the
error is reported at that source field, with the value the author wrote:
``spec.objectives[0].target`` and ``1.0``, not ``spec.objective`` and ``100``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from sla.model.base import error_message
from sla.specs.document import NO_VALUE, Conversion, Finding, SourceDocument, join_path

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Origin:
    field: str
    value: Any


class Draft:
    """A native document body, with the source field behind each native field."""

    def __init__(self, body: dict[str, Any] | None = None) -> None:
        self.body: dict[str, Any] = body or {}
        self._origins: dict[str, Origin] = {}

    def copy(self) -> Draft:
        twin = Draft(copy.deepcopy(self.body))
        twin._origins = dict(self._origins)
        return twin

    def put(
        self, path: str, value: Any, *, source: str, source_value: Any = NO_VALUE
    ) -> None:
        """Set ``path`` (dotted, native camelCase) and remember its source field."""
        *parents, leaf = path.split(".")
        node = self.body
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
        self.trace(
            path,
            source=source,
            value=value if source_value is NO_VALUE else source_value,
        )

    def trace(self, path: str, *, source: str, value: Any = NO_VALUE) -> None:
        """Remember the source of a native path without setting it (list items)."""
        self._origins[path] = Origin(source, value)

    def origin_of(self, native_path: str) -> Origin | None:
        """The source of the longest traced prefix of ``native_path``."""
        candidates = [
            path
            for path in self._origins
            if native_path == path or native_path.startswith((path + ".", path + "["))
        ]
        if not candidates:
            return None
        return self._origins[max(candidates, key=len)]


def build(
    model: type[ModelT], draft: Draft, document: SourceDocument, *, fallback: str = ""
) -> ModelT | Conversion:
    """The validated native object, or a Conversion holding the errors."""
    try:
        return model.model_validate(draft.body)
    except ValidationError as exc:
        findings = [
            _finding(error, draft, document, fallback) for error in exc.errors()
        ]
        return Conversion(findings=findings)


def validation_findings(
    exc: ValidationError, document: SourceDocument
) -> list[Finding]:
    """Errors of a native document, whose field names are the source's own."""
    return [_finding(error, None, document, "") for error in exc.errors()]


def _finding(
    error: ErrorDetails, draft: Draft | None, document: SourceDocument, fallback: str
) -> Finding:
    native_path = join_path(*error["loc"])
    message = _message(error)
    value = _shown_value(error)
    if draft is None:
        return document.error(native_path, message, value)

    origin = draft.origin_of(native_path)
    if origin is None:
        return document.error(
            fallback, f"{message} (native field {native_path})", value
        )
    if origin.value is not NO_VALUE:
        value = origin.value
    return document.error(origin.field, message, value)


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    return error_message(error)


def _shown_value(error: ErrorDetails) -> Any:
    if error["type"] == "missing":
        return NO_VALUE
    value = error.get("input", NO_VALUE)
    # A whole mapping as "the bad value" says nothing the field path does not.
    if isinstance(value, dict):
        return NO_VALUE
    return value


class DraftReader:
    """Reads one source document into a native SLODefinition draft, keeping the
    findings (errors and notes) it meets on the way."""

    def __init__(self, document: SourceDocument) -> None:
        self.document = document
        self.findings: list[Finding] = []
        self.draft = Draft({"apiVersion": "sla.dev/v1alpha1", "kind": "SLODefinition"})

    def note(self, path: str, message: str, *value: Any) -> None:
        self.findings.append(self.document.note(path, message, *value))

    def error(self, path: str, message: str, *value: Any) -> None:
        self.findings.append(self.document.error(path, message, *value))
