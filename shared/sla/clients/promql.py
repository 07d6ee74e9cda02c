"""Safe pieces of PromQL text: string literals and label matchers.

Label values come from specs and from alerts, so they are never pasted into a
query as they are: a value such as ``"} or vector(1) #`` would otherwise close the
matcher and add a term of its own. Everything here is pure text and does no I/O.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = ["MatchOperator", "label_matcher", "promql_string"]

# Prometheus' data model: https://prometheus.io/docs/concepts/data_model/
_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# PromQL double-quoted strings use Go's escape sequences. The backslash must come
# first so the escapes added for the other characters are not escaped again. A raw
# newline ends a PromQL string with an error, the others are escaped for legibility.
_ESCAPES: Final = (
    ("\\", "\\\\"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
)

MatchOperator = Literal["=", "!=", "=~", "!~"]


def promql_string(value: str) -> str:
    """Return ``value`` as a double-quoted PromQL string literal.

    Raises ValueError for text that is not valid Unicode (a lone surrogate), which
    Prometheus would refuse as invalid UTF-8.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{value!r} is not valid UTF-8 text") from error
    for raw, escaped in _ESCAPES:
        value = value.replace(raw, escaped)
    return f'"{value}"'


def label_matcher(name: str, value: str, *, operator: MatchOperator = "=") -> str:
    """Return the matcher ``name="value"`` with the name checked and the value escaped.

    For ``=~`` and ``!~`` the value is a regular expression; it is escaped as a
    string literal all the same, so it can change what matches but never the query.
    """
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a label name (expected [a-zA-Z_][a-zA-Z0-9_]*)"
        )
    return f"{name}{operator}{promql_string(value)}"
