"""PromQL string literals and label matchers are escaped and checked."""

from __future__ import annotations

import pytest

from sla.clients.promql import label_matcher, promql_string


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        pytest.param("checkout", '"checkout"', id="plain"),
        pytest.param('say "hi"', '"say \\"hi\\""', id="double-quote"),
        pytest.param("C:\\temp", '"C:\\\\temp"', id="backslash"),
        pytest.param("two\nlines", '"two\\nlines"', id="newline"),
        pytest.param('\\"', '"\\\\\\""', id="backslash-then-quote"),
        pytest.param("", '""', id="empty"),
    ],
)
def test_string_literal_escapes(value: str, literal: str) -> None:
    assert promql_string(value) == literal


def test_text_that_is_not_unicode_is_refused() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        promql_string("\ud800")


def test_matcher_escapes_the_value() -> None:
    assert label_matcher("path", '"} or vector(1) #') == 'path="\\"} or vector(1) #"'


def test_matcher_takes_the_regex_operators() -> None:
    assert label_matcher("code", "5..", operator="=~") == 'code=~"5.."'


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("1code", id="leading-digit"),
        pytest.param('code="x"} or vector(1) #', id="injection"),
        pytest.param("service-name", id="dash"),
    ],
)
def test_matcher_refuses_names_that_are_not_label_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a label name"):
        label_matcher(name, "x")
