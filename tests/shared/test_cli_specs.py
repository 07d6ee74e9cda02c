"""``sla validate`` and ``sla convert``: exit codes, stdout and stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sla.cli import main

FIXTURES = Path(__file__).parent / "specs" / "fixtures"

INVALID = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {name: api}
spec:
  service: api
  objective: 100
  window: 30d
  indicator: {raw: {errorRatio: 'x[$window]'}}
"""


def test_validate_valid_files_exits_zero_and_prints_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["validate", str(FIXTURES / "sloth-payments.yaml")])

    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("valid: 1 document(s) in 1 file(s); 2 SLODefinition(s)")
    assert "warning: " in err
    assert "error:" not in err


def test_validate_invalid_document_exits_one_naming_file_document_field_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(INVALID)

    code = main(["validate", str(path)])

    _, err = capsys.readouterr()
    assert code == 1
    assert (
        f"error: {path}:6: document 1 (SLODefinition api): spec.objective: "
        "must be in (0, 100) percent, got 100 (value: 100)"
    ) in err


def test_validate_repeated_key_exits_one_naming_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(INVALID.replace("  window: 30d\n", "  window: 30d\n  window: 7d\n"))

    code = main(["validate", str(path)])

    _, err = capsys.readouterr()
    assert code == 1
    assert (
        f"error: {path}:8: document 1 (SLODefinition api): spec.window: "
        "duplicate key 'window', first on line 7: only the last would be read"
    ) in err


def test_validate_missing_path_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["validate", str(tmp_path / "nope.yaml")])

    _, err = capsys.readouterr()
    assert code == 1
    assert "nope.yaml: no such file or directory" in err


def test_validate_without_paths_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate"])

    assert exit_info.value.code == 2


def test_convert_writes_native_yaml_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["convert", str(FIXTURES / "pyrra-search.yaml")])

    out, err = capsys.readouterr()
    documents = list(yaml.safe_load_all(out))
    assert code == 0
    assert [d["metadata"]["name"] for d in documents] == [
        "search-latency",
        "search-errors",
    ]
    assert documents[0]["spec"]["window"] == "14d"
    assert documents[0]["spec"]["objective"] == 99.5
    assert documents[0]["spec"]["indicator"]["latency"]["threshold"] == 0.25
    assert "warning:" in err


def test_convert_with_an_invalid_document_writes_nothing_and_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(INVALID)

    code = main(["convert", str(FIXTURES / "pyrra-search.yaml"), str(path)])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "spec.objective" in err


def test_piped_output_has_no_colour_codes(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(INVALID)

    completed = subprocess.run(
        [sys.executable, "-m", "sla.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(Path(__file__).parents[2] / "shared")},
    )

    assert completed.returncode == 1
    assert "\x1b[" not in completed.stderr
    assert completed.stderr.startswith(f"error: {path}:6:")
