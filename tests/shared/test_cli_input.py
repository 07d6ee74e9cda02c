"""Wrong input on the command line: a clear message and an exit code, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from sla.cli import main

SLO = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {name: checkout}
spec:
  service: checkout
  objective: OBJECTIVE
  window: WINDOW
  indicator:
    ratio:
      bad: {metric: 'http_requests_total{code="500"}'}
      total: {metric: http_requests_total}
"""


def spec(tmp_path: Path, *, objective: str = "99.9", window: str = "30d") -> str:
    path = tmp_path / "slo.yaml"
    path.write_text(SLO.replace("OBJECTIVE", objective).replace("WINDOW", window))
    return str(path)


def test_objective_that_is_not_a_number_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", spec(tmp_path, objective='"abc"')]) == 1
    err = capsys.readouterr().err
    assert "spec.objective" in err and "'abc' is not a number" in err


def test_preset_that_cannot_fit_the_window_is_refused_at_load(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 1h window scales google's 1h/5m page row to 2m/0m; at a 60 s scrape
    interval both windows are raised to 2m, so the row could never work."""
    monkeypatch.delenv("SLA_SCRAPE_INTERVAL_SECONDS", raising=False)
    assert main(["validate", spec(tmp_path, window="1h")]) == 1
    err = capsys.readouterr().err
    assert "spec.alerting" in err and "reaches long window" in err
    # The way out when Prometheus really scrapes faster is named.
    assert "SLA_SCRAPE_INTERVAL_SECONDS" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "budget-api", "--port", "99999"],
        ["serve", "budget-api", "--port", "http"],
        ["dev", "--minute-seconds", "0"],
        ["dev", "--minute-seconds", "-5"],
        ["dev", "--broker-port", "70000"],
    ],
    ids=[
        "port-too-high",
        "port-not-a-number",
        "minute-zero",
        "minute-negative",
        "broker",
    ],
)
def test_bad_flags_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["dev", "--bogus"], "sla dev"),
        (["validate", "slo.yaml", "--bogus"], "sla validate"),
        (["chunks", "purge", "--bogus"], "sla chunks purge"),
    ],
    ids=["dev", "validate", "chunks-purge"],
)
def test_unknown_option_is_a_usage_error_of_its_subcommand(
    argv: list[str], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # scripts/dev passes its arguments to `sla dev` as they are.
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: {command} ")
    assert err.endswith(f"{command}: error: unrecognized arguments: --bogus\n")


@pytest.mark.parametrize("command", ["eval", "rules", "serve", "apply", "dev"])
def test_help_shows_plain_words_not_docstring_markup(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert f"sla {command}" in shown
    assert "``" not in shown and ":mod:`" not in shown and ":class:`" not in shown
