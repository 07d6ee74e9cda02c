"""How spec files' YAML scalars are read: quoted text stays text, on every read."""

from __future__ import annotations

from pathlib import Path

from sla.specs.document import Finding
from sla.specs.loader import read_documents

SCALARS = """\
plain_int: 1
quoted_int: "1"
single_quoted_int: '1'
plain_float: 99.9
quoted_float: "99.9"
plain_bool: true
quoted_bool: "true"
plain_null: null
quoted_null: "null"
tilde: ~
text: svc-0001
"""

EXPECTED = {
    "plain_int": 1,
    "quoted_int": "1",
    "single_quoted_int": "1",
    "plain_float": 99.9,
    "quoted_float": "99.9",
    "plain_bool": True,
    "quoted_bool": "true",
    "plain_null": None,
    "quoted_null": "null",
    "tilde": None,
    "text": "svc-0001",
}


def test_same_text_quoted_and_plain_keeps_its_type_on_every_read(
    tmp_path: Path,
) -> None:
    # The second file holds the same scalars in the other order: a quoted "1"
    # must stay a string although a plain 1 resolves to an integer.
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(SCALARS)
    reordered = "".join(reversed(SCALARS.splitlines(keepends=True)))
    second.write_text(reordered)
    findings: list[Finding] = []

    bodies = [read_documents(path, findings)[0].body for path in (first, second)]

    assert findings == []
    for body in bodies:
        assert body == EXPECTED
        assert {key: type(value) for key, value in body.items()} == {
            key: type(value) for key, value in EXPECTED.items()
        }
