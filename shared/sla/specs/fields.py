"""Reading fields of foreign documents: types, names, labels, percents.

Each reader returns what it read plus findings, so an importer reports every
problem of a document at once instead of stopping at the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from sla.specs.document import Finding, SourceDocument, join_path
from sla.specs.draft import Draft

_NAME_UNSAFE = re.compile(r"[^a-z0-9.-]+")


def mapping_at(
    document: SourceDocument, body: Any, path: str, findings: list[Finding]
) -> dict[str, Any]:
    """``body`` as a mapping; an error (and ``{}``) when it is something else."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        findings.append(document.error(path, "must be a mapping", body))
        return {}
    return body


def list_at(
    document: SourceDocument, body: Any, path: str, findings: list[Finding]
) -> list[Any]:
    if body is None:
        return []
    if not isinstance(body, list):
        findings.append(document.error(path, "must be a list", body))
        return []
    return body


def text_at(
    document: SourceDocument,
    body: dict[str, Any],
    path: str,
    key: str,
    findings: list[Finding],
    *,
    required: bool = False,
) -> str | None:
    """A string field; numbers are not silently turned into text here."""
    value = body.get(key)
    field = join_path(path, key)
    if value is None:
        if required:
            findings.append(document.error(field, "required field is missing"))
        return None
    if not isinstance(value, str) or not value.strip():
        findings.append(document.error(field, "must be a non-empty string", value))
        return None
    return value


def unknown_fields(
    document: SourceDocument,
    body: dict[str, Any],
    path: str,
    known: Iterable[str],
    findings: list[Finding],
) -> None:
    """An error per field the format does not define: a typo would lose meaning."""
    allowed = set(known)
    for key in body:
        if key not in allowed:
            findings.append(document.error(join_path(path, str(key)), "unknown field"))


def not_carried(
    document: SourceDocument,
    body: dict[str, Any],
    path: str,
    keys: Iterable[str],
    reason: str,
    findings: list[Finding],
) -> None:
    """A note per present field that has no native counterpart."""
    for key in keys:
        if body.get(key) not in (None, "", [], {}):
            field = join_path(path, key)
            findings.append(
                document.note(field, f"not carried over: {reason}", body[key])
            )


def fraction_to_percent(value: Any) -> Decimal | None:
    """0.999 → 99.9, exactly from the written digits; None if not a number."""
    number = decimal_of(value)
    return None if number is None else _tidy(number * 100)


def decimal_of(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _tidy(number: Decimal) -> Decimal:
    # 99.900 and 1E+2 are right but read oddly in output; keep the plain digits.
    if number == number.to_integral_value():
        return Decimal(int(number))
    return number.normalize()


def object_name(
    document: SourceDocument, text: str, path: str, findings: list[Finding]
) -> str:
    """A Kubernetes object name made from ``text``; a note when it had to change."""
    name = _NAME_UNSAFE.sub("-", text.lower()).strip("-.")[:253].strip("-.")
    if name != text:
        findings.append(
            document.note(
                path, f"name written as {name!r} to be a valid object name", text
            )
        )
    return name


def label_map(
    document: SourceDocument, body: Any, path: str, findings: list[Finding]
) -> dict[str, str]:
    """Labels as text; lists of one value are unwrapped, longer lists reported."""
    labels: dict[str, str] = {}
    for key, value in mapping_at(document, body, path, findings).items():
        field = join_path(path, str(key))
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, list | dict):
            findings.append(
                document.note(field, "not carried over: a label holds one value", value)
            )
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        labels[str(key)] = "" if value is None else str(value)
    return labels


def slug(text: str) -> str:
    """``Internal objective`` → ``internal-objective``."""
    return _NAME_UNSAFE.sub("-", text.lower()).strip("-.")


def put_object_metadata(
    document: SourceDocument,
    metadata: dict[str, Any],
    draft: Draft,
    findings: list[Finding],
) -> tuple[str | None, str | None, dict[str, str]]:
    """Carry a Kubernetes-style ``metadata`` (name, namespace, labels, annotations)
    into the draft; returns the name as written, the native name, and the labels."""
    name = text_at(document, metadata, "metadata", "name", findings, required=True)
    if name is None:
        return None, None, {}
    native = object_name(document, name, "metadata.name", findings)
    draft.put("metadata.name", native, source="metadata.name", source_value=name)
    if isinstance(metadata.get("namespace"), str):
        draft.put(
            "metadata.namespace", metadata["namespace"], source="metadata.namespace"
        )
    labels = label_map(document, metadata.get("labels"), "metadata.labels", findings)
    if labels:
        draft.put("metadata.labels", labels, source="metadata.labels")
    return name, native, labels
