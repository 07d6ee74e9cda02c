"""The project's own kinds, ``sla.dev/v1alpha1`` SLODefinition and SLAPolicy.

Read with the pydantic models as they are; written back as YAML with camelCase
fields, durations as text and percents as numbers.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sla.model.base import API_VERSION
from sla.model.policy import SLAPolicy
from sla.model.slo import SLODefinition
from sla.specs.document import (
    Conversion,
    NativeObject,
    RunContext,
    SourceDocument,
    unknown_kind,
)
from sla.specs.draft import validation_findings

KINDS: dict[str, type[SLODefinition] | type[SLAPolicy]] = {
    "SLODefinition": SLODefinition,
    "SLAPolicy": SLAPolicy,
}


def recognises(document: SourceDocument) -> bool:
    return document.api_version == API_VERSION


def convert(document: SourceDocument, context: RunContext) -> Conversion:
    model = KINDS.get(document.kind)
    if model is None:
        return unknown_kind(document, API_VERSION, " or ".join(KINDS))
    try:
        native = model.model_validate(document.body)
    except ValidationError as exc:
        return Conversion(findings=validation_findings(exc, document))
    return Conversion(objects=[native])


def to_document(native: BaseModel) -> dict[str, Any]:
    """The object as its YAML would hold it: camelCase, text durations, no nulls."""
    return native.model_dump(mode="json", by_alias=True, exclude_none=True)


class _NativeDumper(yaml.SafeDumper):
    """Block style for multi-line PromQL, so queries stay readable."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_NativeDumper.add_representer(str, _represent_text)


def to_yaml(objects: list[NativeObject], *, headers: list[str] | None = None) -> str:
    """Multi-document YAML, ``---`` separated; each header becomes a comment line."""
    parts: list[str] = []
    for index, native in enumerate(objects):
        text = yaml.dump(
            to_document(native),
            Dumper=_NativeDumper,
            sort_keys=False,
            allow_unicode=True,
            width=100,
        )
        header = headers[index] if headers else ""
        comment = f"# {header}\n" if header else ""
        parts.append(f"---\n{comment}{text}")
    return "".join(parts)
