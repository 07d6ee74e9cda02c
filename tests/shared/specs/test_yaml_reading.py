"""How spec files' YAML is read: quoted text stays text, on every read, and a key
written twice in one mapping is an error rather than a silent choice."""

from __future__ import annotations

from pathlib import Path

from sla.model.slo import SLODefinition
from sla.specs import load_paths, load_text
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


REPEATED_OBJECTIVE = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {name: api}
spec:
  service: api
  objective: 99.9
  window: 30d
  "objective": 99
  indicator:
    ratio: {bad: {metric: errors_total}, total: {metric: requests_total}}
"""


def test_key_written_twice_is_an_error_naming_file_line_and_key(
    tmp_path: Path,
) -> None:
    # Quoted or not, "objective" is the same key; the second is on line 8.
    path = tmp_path / "slo.yaml"
    path.write_text(REPEATED_OBJECTIVE)

    result = load_paths([path])

    assert [error.describe() for error in result.errors] == [
        f"{path}:8: document 1 (SLODefinition api): spec.objective: "
        "duplicate key 'objective', first on line 6: only the last would be read"
    ]


def test_key_repeated_in_an_item_of_a_list_is_named_within_that_item() -> None:
    text = """\
- apiVersion: sla.dev/v1alpha1
  kind: SLAPolicy
  metadata: {name: freeze}
- apiVersion: sla.dev/v1alpha1
  kind: SLODefinition
  metadata: {name: api, name: web}
"""
    result = load_text(text, name="slos.yaml")

    repeated = [error for error in result.errors if "duplicate key" in error.message]
    assert [error.describe() for error in repeated] == [
        "slos.yaml:6: document 1 item 1 (SLODefinition web): metadata.name: "
        "duplicate key 'name', first on line 6: only the last would be read"
    ]


def test_keys_a_merge_key_brings_may_be_set_again() -> None:
    text = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {name: api}
spec:
  <<: {service: api, objective: 99.9, window: 30d}
  objective: 99
  indicator:
    ratio: {bad: {metric: errors_total}, total: {metric: requests_total}}
"""
    result = load_text(text, name="slo.yaml")

    assert result.errors == []
    slo = result.objects[0]
    assert isinstance(slo, SLODefinition)
    assert slo.spec.objective == 99
