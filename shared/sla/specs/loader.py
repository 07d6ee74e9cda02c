"""Reading spec files and directories into native objects, notes and errors.

Steps: find the files (directories recursively, ``*.yaml`` and ``*.yml``), read
every YAML document of each (a document that is a list holds one object per
item, as the OpenSLO SDK writes them), tell each document's format by its
``apiVersion`` and ``kind`` or by its shape, then convert them all with the
whole run in view, since OpenSLO SLOs name SLIs and alert policies kept in
other documents and slo-generator SLOs take windows from a shared config.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import yaml

from sla.budget.windows import burn_rate_table, check_timeslice
from sla.errors import SpecError
from sla.model.slo import SLODefinition
from sla.specs import native, openslo, pyrra, slogenerator, sloth
from sla.specs.document import (
    Conversion,
    Finding,
    NativeObject,
    RunContext,
    SourceDocument,
    join_path,
)

FORMATS: tuple[ModuleType, ...] = (native, openslo, sloth, pyrra, slogenerator)
"""Importers, asked in order whether they recognise a document."""

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class Converted:
    """A native object and the source document it came from."""

    native: NativeObject
    source: SourceDocument

    @property
    def origin(self) -> str:
        return f"from {self.source.file}, {self.source.label}"


@dataclass
class LoadResult:
    """Everything one run read: objects in document order, then findings."""

    converted: list[Converted] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    documents: int = 0
    files: int = 0

    @property
    def objects(self) -> list[NativeObject]:
        return [item.native for item in self.converted]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "note"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise the first error as a SpecError, for callers that need all or "
        "nothing."""
        if self.errors:
            raise self.errors[0].to_spec_error()


def load_paths(
    paths: Iterable[str | Path], *, scrape_interval: int | None = None
) -> LoadResult:
    """Read, recognise and convert every document under ``paths``.

    ``scrape_interval`` (default: ``SLA_SCRAPE_INTERVAL_SECONDS``, else 60) sets
    the floor of two scrapes that burn-rate windows are raised to.
    """
    result = LoadResult()
    documents: list[SourceDocument] = []
    for file in spec_files(paths, result.findings):
        result.files += 1
        documents.extend(read_documents(file, result.findings))
    return _convert_all(documents, result, scrape_interval=scrape_interval)


def configured_scrape_interval() -> int:
    """The scrape interval the functions will use, as far as the environment says;
    a wrong value is reported by the settings where it is used, not here."""
    text = os.environ.get("SLA_SCRAPE_INTERVAL_SECONDS", "")
    return int(text) if text.isdigit() and int(text) > 0 else 60


def load_text(text: str, *, name: str = "<text>") -> LoadResult:
    """Convert documents given as text, as if read from a file called ``name``."""
    result = LoadResult(files=1)
    return _convert_all(_parse(text, name, result.findings), result)


def _convert_all(
    documents: list[SourceDocument],
    result: LoadResult,
    *,
    scrape_interval: int | None = None,
) -> LoadResult:
    result.documents = len(documents)
    context = RunContext(documents)
    for document in documents:
        conversion = convert_document(document, context)
        result.findings.extend(conversion.findings)
        result.converted.extend(Converted(obj, document) for obj in conversion.objects)
    result.findings.extend(_duplicates(result.converted))
    interval = scrape_interval or configured_scrape_interval()
    result.findings.extend(_unusable_tables(result.converted, interval))
    result.findings = _unique(result.findings)
    return result


def _unusable_tables(converted: list[Converted], scrape_interval: int) -> list[Finding]:
    """SLOs whose short burn-rate window would reach its long one once raised to
    two scrape intervals, or whose slices are too short to hold two samples:
    rejected at load, as the design asks, rather than at the first evaluation."""
    findings = []
    for item in converted:
        if not isinstance(item.native, SLODefinition):
            continue
        for check in (burn_rate_table, check_timeslice):
            try:
                check(item.native.spec, scrape_interval=scrape_interval)
            except SpecError as error:
                findings.append(item.source.error(error.field, error.message))
    return findings


def convert_document(document: SourceDocument, context: RunContext) -> Conversion:
    for importer in FORMATS:
        if importer.recognises(document):
            conversion: Conversion = importer.convert(document, context)
            return conversion
    return Conversion(findings=[_unrecognised(document)])


def _unrecognised(document: SourceDocument) -> Finding:
    if not document.api_version:
        return document.error(
            "apiVersion",
            "not a spec this tool reads: no apiVersion, and not a Sloth "
            "prometheus/v1 file or an slo-generator shared config",
        )
    what = f"{document.api_version} {document.kind}".strip()
    return document.error(
        "kind",
        f"unknown kind {what}: expected sla.dev/v1alpha1 SLODefinition or SLAPolicy, "
        "OpenSLO, Sloth, Pyrra or slo-generator",
        document.kind or None,
    )


def spec_files(paths: Iterable[str | Path], findings: list[Finding]) -> list[Path]:
    """The spec files under ``paths`` in reading order; errors for what is not."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in SPEC_SUFFIXES and p.is_file() and not _hidden(p, path)
            )
            if not found:
                findings.append(
                    _file_error(path, "directory holds no .yaml or .yml files")
                )
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            findings.append(_file_error(path, "no such file or directory"))
    return files


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _file_error(path: Path | str, message: str, line: int | None = None) -> Finding:
    return Finding("error", str(path), line, "", "", message)


def read_documents(path: Path, findings: list[Finding]) -> list[SourceDocument]:
    """The documents of one file; errors for unreadable, empty or broken YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        findings.append(_file_error(path, f"not UTF-8 text ({exc.reason})"))
        return []
    except OSError as exc:
        findings.append(_file_error(path, f"cannot read: {exc.strerror or exc}"))
        return []
    return _parse(text, str(path), findings)


# libyaml's loader parses about eight times faster and keeps the marks that give
# line numbers; PyYAML built without libyaml falls back to the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str, file: str, findings: list[Finding]) -> list[SourceDocument]:
    loader = _LOADER(text)
    documents: list[SourceDocument] = []
    number = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            number += 1
            repeated = _repeated_keys(node)
            body = loader.construct_document(node)
            read = _split(file, number, body, node, findings)
            findings.extend(_repeat_errors(file, number, repeated, read))
            documents.extend(read)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        findings.append(_file_error(file, f"YAML syntax error: {problem}", line))
        return []
    except yaml.YAMLError as exc:
        findings.append(_file_error(file, f"YAML error: {exc}"))
        return []
    finally:
        loader.dispose()
    if number == 0 or (not documents and not _has_errors_for(findings, file)):
        findings.append(_file_error(file, "empty file: no YAML documents"))
    return documents


def _has_errors_for(findings: Sequence[Finding], file: str) -> bool:
    return any(f.file == file and f.severity == "error" for f in findings)


def _split(
    file: str, number: int, body: object, node: yaml.Node, findings: list[Finding]
) -> list[SourceDocument]:
    if body is None:
        # An empty document between separators (a trailing ---) holds nothing.
        return []
    if isinstance(body, dict):
        return [SourceDocument(file, number, body, node)]
    if isinstance(body, list) and isinstance(node, yaml.SequenceNode):
        documents = []
        for item, (value, item_node) in enumerate(zip(body, node.value, strict=True)):
            if isinstance(value, dict):
                documents.append(SourceDocument(file, number, value, item_node, item))
            else:
                findings.append(
                    Finding(
                        "error",
                        file,
                        item_node.start_mark.line + 1,
                        f"document {number} item {item}",
                        "",
                        "must be a mapping",
                    )
                )
        return documents
    findings.append(
        Finding(
            "error",
            file,
            node.start_mark.line + 1,
            f"document {number}",
            "",
            "must be a mapping with apiVersion and kind",
            body,
        )
    )
    return []


_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class _RepeatedKey:
    """A key written a second time in one mapping."""

    path: tuple[str | int, ...]
    """From the top of the YAML document to the mapping holding the key."""
    key: str
    line: int
    first_line: int


def _repeated_keys(root: yaml.Node) -> list[_RepeatedKey]:
    """Keys a mapping repeats. YAML readers keep the last value without a word,
    so the file does not say which one its author meant.

    Read before construction, which folds the keys a merge key (``<<``) brings
    into the mapping: those the mapping sets again would look repeated after it.
    """
    repeated = []
    # Scalars hold no keys and are never queued. A collection that an alias
    # reaches again is read once.
    seen: set[int] = set()
    pending: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    while pending:
        node, path = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            pending.extend(
                (item, (*path, index))
                for index, item in enumerate(node.value)
                if not isinstance(item, yaml.ScalarNode)
            )
        elif isinstance(node, yaml.MappingNode):
            repeated.extend(_repeated_in(node, path))
            pending.extend(
                (value, (*path, key.value))
                for key, value in node.value
                if isinstance(key, yaml.ScalarNode)
                and not isinstance(value, yaml.ScalarNode)
            )
    return sorted(repeated, key=lambda repeat: repeat.line)


def _repeated_in(
    mapping: yaml.MappingNode, path: tuple[str | int, ...]
) -> list[_RepeatedKey]:
    # Nearly every mapping has distinct keys, which one set tells.
    texts = [key.value for key, _ in mapping.value if isinstance(key, yaml.ScalarNode)]
    if len(set(texts)) == len(texts):
        return []
    first_lines: dict[tuple[str, str], int] = {}
    repeated = []
    for key, _ in mapping.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
            continue
        line = key.start_mark.line + 1
        # Compared as resolved: name and "name" are one key, 1 and "1" two.
        identity = (key.tag, key.value)
        if identity in first_lines:
            first = first_lines[identity]
            repeated.append(_RepeatedKey(path, key.value, line, first))
        else:
            first_lines[identity] = line
    return repeated


def _repeat_errors(
    file: str,
    number: int,
    repeated: list[_RepeatedKey],
    documents: list[SourceDocument],
) -> list[Finding]:
    """An error for each repeated key, against the source document holding it."""
    by_item = {document.item: document for document in documents}
    errors = []
    for repeat in repeated:
        path = repeat.path
        # In a document that is a list, the path starts at the item's index.
        item = path[0] if path and isinstance(path[0], int) else None
        document = by_item.get(item)
        label = f"document {number}" if document is None else document.label
        if document is not None and item is not None:
            path = path[1:]
        errors.append(
            Finding(
                "error",
                file,
                repeat.line,
                label,
                join_path(*path, repeat.key),
                f"duplicate key {repeat.key!r}, first on line {repeat.first_line}: "
                "only the last would be read",
            )
        )
    return errors


def _unique(findings: list[Finding]) -> list[Finding]:
    """Each finding once: an SLI named by two SLOs is reported once, not twice."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.severity, finding.describe())
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def _duplicates(converted: list[Converted]) -> list[Finding]:
    """Two documents defining the same object: applying both would keep only one."""
    seen: dict[tuple[str, str, str], Converted] = {}
    findings = []
    for item in converted:
        meta = item.native.metadata
        key = (item.native.kind, meta.namespace, meta.name)
        first = seen.setdefault(key, item)
        if first is not item:
            findings.append(
                item.source.error(
                    "metadata.name",
                    f"{item.native.kind} {meta.namespace}/{meta.name} is also defined "
                    f"{first.origin}",
                )
            )
    return findings
