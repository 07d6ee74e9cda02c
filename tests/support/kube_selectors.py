"""Label and field selectors as the Kubernetes API server parses them.

Label selectors follow ``k8s.io/apimachinery/pkg/labels`` (``Parse``): requirements
joined by commas, each one of

    key=value   key==value   key!=value
    key in (v1,v2)   key notin (v1,v2)
    key   !key

``!=`` and ``notin`` also match objects that lack the key, as the real API does.
Field selectors accept ``metadata.name`` and ``metadata.namespace`` with ``=``,
``==`` and ``!=``, which is all the API offers for custom resources.

A selector that does not parse raises ``SelectorError``; the server turns that
into a 400 BadRequest, as the API server does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "FieldSelector",
    "LabelSelector",
    "SelectorError",
    "parse_field_selector",
    "parse_label_selector",
]

# The operator tokens, longest first so "!=" wins over "!" and "==" over "=".
_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|[^\s!=(),]+)")
_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_FIELDS = ("metadata.name", "metadata.namespace")


class SelectorError(ValueError):
    """A selector the API server would reject with 400."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "in", "notin", "exists", "!exists"; = and != are in/notin
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a labelSelector query value; an empty one selects everything."""
    tokens = _tokenize(text)
    requirements: list[Requirement] = []
    position = 0
    # Each pass consumes one requirement, so the loop is bounded by the tokens.
    while position < len(tokens):
        requirement, position = _requirement(tokens, position, text)
        requirements.append(requirement)
        if position < len(tokens):
            if tokens[position] != ",":
                raise SelectorError(f"found '{tokens[position]}', expected: ','")
            position += 1
            if position == len(tokens):
                raise SelectorError(
                    f"found '', expected: identifier after ',' in {text!r}"
                )
    return LabelSelector(tuple(requirements))


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None:  # only whitespace is left unmatched, and that was stripped
            raise SelectorError(f"unable to parse requirement: {text!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _requirement(
    tokens: list[str], position: int, text: str
) -> tuple[Requirement, int]:
    if tokens[position] == "!":
        key = _key(tokens, position + 1)
        return Requirement(key, "!exists"), position + 2

    key = _key(tokens, position)
    position += 1
    operator = tokens[position] if position < len(tokens) else ","
    if operator == ",":
        return Requirement(key, "exists"), position
    if operator in ("=", "==", "!="):
        value, position = _single_value(tokens, position + 1)
        return Requirement(key, "in" if operator != "!=" else "notin", value), position
    if operator in ("in", "notin"):
        values, position = _value_set(tokens, position + 1, text)
        return Requirement(key, operator, values), position
    raise SelectorError(f"found '{operator}', expected: in, notin, =, ==, !=, or ','")


def _key(tokens: list[str], position: int) -> str:
    key = tokens[position] if position < len(tokens) else ""
    if not _KEY.match(key):
        raise SelectorError(f"invalid label key {key!r}")
    return key


def _single_value(tokens: list[str], position: int) -> tuple[frozenset[str], int]:
    # "key=" with nothing after it selects the empty value, as in the real parser.
    if position >= len(tokens) or tokens[position] == ",":
        return frozenset({""}), position
    return frozenset({_value(tokens[position])}), position + 1


def _value_set(
    tokens: list[str], position: int, text: str
) -> tuple[frozenset[str], int]:
    if position >= len(tokens) or tokens[position] != "(":
        raise SelectorError(f"found '', expected: '(' in {text!r}")
    values: set[str] = set()
    position += 1
    expecting_value = True
    while position < len(tokens) and tokens[position] != ")":
        token = tokens[position]
        if token == ",":
            if expecting_value:
                values.add("")
            expecting_value = True
        else:
            values.add(_value(token))
            expecting_value = False
        position += 1
    if position >= len(tokens):
        raise SelectorError(f"found '', expected: ')' in {text!r}")
    if expecting_value and values:
        values.add("")  # a trailing comma before ")" is an empty value
    if not values:
        raise SelectorError("for 'in', 'notin' operators, values set can't be empty")
    return frozenset(values), position + 1


def _value(token: str) -> str:
    if token in ("!", "=", "==", "!=", "(", ")") or not _VALUE.match(token):
        raise SelectorError(f"invalid label value: {token!r}")
    return token


@dataclass(frozen=True)
class FieldSelector:
    tests: tuple[Callable[[Mapping[str, str]], bool], ...]

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(test(fields) for test in self.tests)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a fieldSelector query value on metadata.name and metadata.namespace."""
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for term in filter(None, (part.strip() for part in text.split(","))):
        match = re.fullmatch(r"([^!=]+)(==|=|!=)(.*)", term)
        if match is None:
            raise SelectorError(
                f"invalid selector: {term!r}; can't understand {term!r}"
            )
        field, operator, value = match.groups()
        if field not in _FIELDS:
            raise SelectorError(f'field label not supported: "{field}"')
        tests.append(_field_test(field, operator != "!=", value))
    return FieldSelector(tuple(tests))


def _field_test(
    field: str, equal: bool, value: str
) -> Callable[[Mapping[str, str]], bool]:
    return lambda fields: (fields.get(field, "") == value) == equal
