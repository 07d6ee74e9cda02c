"""Rewriting other tools' PromQL into the native query contract.

A native ``Query.expr`` must return a count of events over ``$window``; a
``Query.metric`` is a bare counter selector the engine counts itself. The tools
write their queries differently: Sloth as per-second rates over ``{{.window}}``,
slo-generator with ``[window]``, OpenSLO often as a bare counter sum. These
functions move such text to the native form, or say why they cannot.

Nothing here parses PromQL fully: only the shapes the tools produce are
recognised, and anything else is left as written for the caller to report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sla.model.slo import WINDOW_PLACEHOLDER

# Go template spelling used by Sloth and OpenSLO examples, spaces allowed.
_GO_TEMPLATE_WINDOW = re.compile(r"\{\{\s*\.window\s*\}\}")
# slo-generator replaces the text "[window" with "[<seconds>s", so "[window]"
# and "[window:1m]" both name the window.
_SLO_GENERATOR_WINDOW = re.compile(r"\[window(?=[\]:])")

_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_MATCHERS = r"\{(?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*\}"
_SELECTOR = re.compile(rf"^\s*(?:{_METRIC_NAME}\s*(?:{_MATCHERS})?|{_MATCHERS})\s*$")
_SUM_OF_SELECTOR = re.compile(
    rf"^\s*sum\s*\(\s*(?P<selector>(?:{_METRIC_NAME}\s*(?:{_MATCHERS})?|{_MATCHERS}))"
    r"\s*\)\s*$"
)
_MATCHER = re.compile(
    r"\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"
    r"\"(?P<value>(?:[^\"\\]|\\.)*)\"\s*"
)
_RATE_CALL = re.compile(r"(?<![a-zA-Z0-9_:])rate\s*\(")


def fill_go_template_window(text: str) -> str:
    """``{{.window}}`` → ``$window``."""
    return _GO_TEMPLATE_WINDOW.sub(WINDOW_PLACEHOLDER, text)


def fill_slo_generator_window(text: str) -> str:
    """``[window]`` → ``[$window]``."""
    return _SLO_GENERATOR_WINDOW.sub("[" + WINDOW_PLACEHOLDER, text)


def has_window(text: str) -> bool:
    return WINDOW_PLACEHOLDER in text


def is_selector(text: str) -> bool:
    """A bare series selector: ``name{label="v"}``, ``name`` or ``{__name__="x"}``."""
    return bool(_SELECTOR.match(text))


def rates_to_increases(expr: str) -> tuple[str, int]:
    """Turn ``rate(x[$window])`` into ``increase(x[$window])``; count the rewrites.

    A rate over the whole window times the window's length is the increase over
    it, so a ratio of rates equals the ratio of increases, but only increases are
    counts that add up across chunks. Rates over any other range are left alone.
    """
    rewritten: list[str] = []
    position = 0
    count = 0
    for match in _RATE_CALL.finditer(expr):
        closing = _matching_paren(expr, match.end() - 1)
        if closing is None or match.start() < position:
            continue
        argument = expr[match.end() : closing].rstrip()
        if not argument.endswith(f"[{WINDOW_PLACEHOLDER}]"):
            continue
        rewritten.append(expr[position : match.start()])
        rewritten.append("increase" + expr[match.start() + len("rate") : match.end()])
        position = match.end()
        count += 1
    rewritten.append(expr[position:])
    return "".join(rewritten), count


def _matching_paren(text: str, opening: int) -> int | None:
    depth = 0
    quote: str | None = None
    index = opening
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def counter_sum_over_window(text: str) -> str | None:
    """``sum(selector)`` of a counter → ``sum(increase(selector[$window]))``.

    OpenSLO marks a query ``counter: true`` when it reads a counter's current
    value; the events of a window are then its increase over the window.
    """
    match = _SUM_OF_SELECTOR.match(text)
    if not match:
        return None
    selector = match.group("selector").strip()
    return f"sum(increase({selector}[{WINDOW_PLACEHOLDER}]))"


@dataclass(frozen=True)
class Selector:
    """A series selector split into its metric name and label matchers."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]

    def without(self, label: str) -> Selector:
        kept = tuple(m for m in self.matchers if m[0] != label)
        return Selector(self.name, kept)

    def renamed(self, name: str) -> Selector:
        return Selector(name, self.matchers)

    def value_of(self, label: str) -> str | None:
        return next(
            (m[2] for m in self.matchers if m[0] == label and m[1] == "="), None
        )

    def same_matchers(self, other: Selector) -> bool:
        return sorted(self.matchers) == sorted(other.matchers)

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        inner = ",".join(f'{label}{op}"{value}"' for label, op, value in self.matchers)
        return f"{self.name}{{{inner}}}"


def parse_selector(text: str) -> Selector | None:
    """Split ``name{a="1",b=~"x"}``; None when the text is not that simple shape."""
    match = re.match(
        rf"^\s*(?P<name>{_METRIC_NAME})\s*(?P<body>{_MATCHERS})?\s*$", text
    )
    if not match:
        return None
    body = (match.group("body") or "{}")[1:-1]
    matchers: list[tuple[str, str, str]] = []
    for part in _split_matchers(body):
        found = _MATCHER.fullmatch(part)
        if not found:
            return None
        matchers.append((found["label"], found["op"], found["value"]))
    return Selector(match.group("name"), tuple(matchers))


def _split_matchers(body: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    in_quote = False
    escaped = False
    for char in body:
        if escaped:
            escaped = False
        elif char == "\\" and in_quote:
            escaped = True
        elif char == '"':
            in_quote = not in_quote
        elif char == "," and not in_quote:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]
