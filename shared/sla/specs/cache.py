"""SLO definitions kept between runs of ``sla eval``, keyed by what they came from.

``sla eval`` reads the same files minute after minute, the way the tick runs, and
reading and checking a thousand spec files took longer than a tenth of a warm
evaluation. An entry holds the SLO definitions one set of files converted to, under
a digest of everything the conversion depends on:

- the library's own source files (names, sizes and modification times), so an
  upgrade or a local edit of an importer never reuses an old conversion;
- the scrape interval that raises burn-rate windows;
- every spec file's path and bytes, in the order the loader reads them.

Anything else is a miss, and a miss loads the files as usual. Only loads without
errors are kept, so errors are always reported from the files. Entries are written
whole (a temporary file renamed into place); an unreadable, unwritable or damaged
cache is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import platformdirs
from pydantic import TypeAdapter, ValidationError

from sla.model.slo import SLODefinition
from sla.specs.document import Finding
from sla.specs.loader import configured_scrape_interval, spec_files

ENTRIES_KEPT: Final = 16
"""Entries beyond the most recently used ones are deleted when one is written."""

_DEFINITIONS: Final = TypeAdapter(list[SLODefinition])
_LIBRARY: Final = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("sla")) / "specs"


@functools.cache
def _library_fingerprint() -> bytes:
    digest = hashlib.sha256()
    for path in sorted(_LIBRARY.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(_LIBRARY)}\0{stat.st_size}\0".encode())
        digest.update(f"{stat.st_mtime_ns}\0".encode())
    return digest.digest()


def spec_digest(paths: Iterable[str | Path]) -> str | None:
    """The key of the files under ``paths``; None when they cannot all be read."""
    findings: list[Finding] = []
    files = spec_files(paths, findings)
    if findings:
        return None
    digest = hashlib.sha256(_library_fingerprint())
    digest.update(f"scrape={configured_scrape_interval()}\0".encode())
    for file in files:
        try:
            content = file.read_bytes()
        except OSError:
            return None
        path = os.fsencode(file)
        digest.update(f"{len(path)}:{len(content)}:".encode())
        digest.update(path)
        digest.update(content)
    return digest.hexdigest()


class SpecCache:
    """Definitions by digest, one JSON file each, in ``directory``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_cache_dir()

    def _entry(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> list[SLODefinition] | None:
        entry = self._entry(key)
        try:
            definitions = _DEFINITIONS.validate_json(entry.read_bytes())
            os.utime(entry)
        except (OSError, ValidationError):
            return None
        return definitions

    def put(self, key: str, definitions: Sequence[SLODefinition]) -> None:
        content = _DEFINITIONS.dump_json(list(definitions))
        temporary: Path | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            descriptor, name = tempfile.mkstemp(
                dir=self.directory, prefix=".", suffix=".tmp"
            )
            temporary = Path(name)
            with os.fdopen(descriptor, "wb") as file:
                file.write(content)
            temporary.replace(self._entry(key))
            temporary = None
            self._prune()
        except OSError:
            pass
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    temporary.unlink(missing_ok=True)

    def _prune(self) -> None:
        entries = sorted(
            self.directory.glob("*.json"),
            key=lambda path: path.stat().st_mtime_ns,
            reverse=True,
        )
        for stale in entries[ENTRIES_KEPT:]:
            stale.unlink(missing_ok=True)
