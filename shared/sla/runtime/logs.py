"""Structured logs: one JSON object per line on standard output.

Knative collects a container's standard output; a JSON line per record lets the
cluster's log pipeline index the fields. A record's extra ``fields`` (a mapping) are
merged into its line, which is how the runtime writes its one line per handled
event. Nothing here ever writes a secret: callers pass identifiers, not payloads.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

FIELDS: Final = "fields"

QUIET_LOGGERS: Final = ("httpx", "httpcore", "urllib3", "kubernetes")
"""Clients that log every request at INFO: a tick would write a line per query and
per posted event, drowning the one line per handled event."""
"""The ``extra`` key whose mapping is merged into the JSON line."""


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", **fields, "error"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` is at the time, not at creation: test
    runners and servers replace it."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stdout for the whole process; calling it again changes only
    the level."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
