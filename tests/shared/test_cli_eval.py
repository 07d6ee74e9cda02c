"""``sla eval`` and ``sla chunks purge`` as a user runs them, on a real Prometheus."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import asyncpg
import pytest

from sla.cli import main
from tests.support.prometheus import (
    FakePrometheus,
    PrometheusFactory,
    Reply,
    Timeline,
    free_port,
    requests,
)

START = datetime(2026, 2, 1, tzinfo=UTC)
END = START + timedelta(days=2)

SLO_YAML = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  objective: 99
  window: 1d
  indicator:
    ratio:
      bad: {metric: 'http_requests_total{job="checkout", code="500"}'}
      total: {metric: 'http_requests_total{job="checkout"}'}
  alerting:
    rows:
      - {severity: page, longWindow: 1h, shortWindow: 5m, factor: 10}
"""


@pytest.fixture(scope="module")
def prometheus_url(prometheus_factory: PrometheusFactory) -> str:
    timeline = Timeline(start=START, end=END)
    return prometheus_factory(
        requests(
            timeline=timeline,
            per_step=60,
            error_ratio=Fraction(1, 200),
            labels={"job": "checkout"},
        )
    )


@pytest.fixture
def slo_file(tmp_path: Path) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(SLO_YAML)
    return path


@pytest.fixture
def database(own_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database of its own, so the command's tables start empty."""
    monkeypatch.setenv("SLA_DATABASE_URL", own_database_url)
    return own_database_url


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    code = main(["eval", *argv, "-o", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else []


def test_eval_prints_the_design_fields_with_exact_figures(
    prometheus_url: str,
    slo_file: Path,
    database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A day at 0.5 % errors against 1 % allowed: half the budget consumed."""
    code, documents = run_json(
        capsys, str(slo_file), "--prometheus", prometheus_url, "--at", END.isoformat()
    )
    assert code == 0
    [snap] = documents
    assert snap["slo"] == "shop/checkout"
    assert snap["evaluated_at"] == "2026-02-03T00:00:00Z"
    assert snap["events"] == {"good": 86400 - 432, "bad": 432, "total": 86400}
    assert snap["error_budget"]["consumed"] == float(Fraction(432, 86400) * 100)
    assert snap["error_budget"]["remaining"] == 0.5
    assert snap["status"] == "healthy"
    assert snap["alerts"][0]["firing"] is False


def test_eval_at_accepts_unix_seconds_and_rounds_down_to_the_minute(
    prometheus_url: str,
    slo_file: Path,
    database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seconds = int(END.timestamp()) + 42
    code, documents = run_json(
        capsys, str(slo_file), "--prometheus", prometheus_url, "--at", str(seconds)
    )
    assert code == 0
    assert documents[0]["evaluated_at"] == "2026-02-03T00:00:00Z"


def test_no_cache_evaluates_without_touching_the_store(
    prometheus_url: str,
    slo_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A database nobody listens on: any attempt to use it would fail the command.
    monkeypatch.setenv("SLA_DATABASE_URL", f"postgresql://127.0.0.1:{free_port()}/x")
    code, documents = run_json(
        capsys,
        str(slo_file),
        "--prometheus",
        prometheus_url,
        "--at",
        END.isoformat(),
        "--no-cache",
    )
    assert code == 0
    assert documents[0]["events"]["total"] == 86400


def test_eval_fills_chunk_history_but_never_the_snapshot_history(
    prometheus_url: str,
    slo_file: Path,
    database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The file may differ from the catalogued SLO of the same name, whose
    # history the running system keeps.
    args = [str(slo_file), "--prometheus", prometheus_url, "--at", END.isoformat()]
    code, _ = run_json(capsys, *args)

    async def count(table: str) -> int:
        connection = await asyncpg.connect(database)
        try:
            return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await connection.close()

    assert code == 0
    assert asyncio.run(count("count_chunks")) > 0
    assert asyncio.run(count("budget_snapshots")) == 0


def test_warm_tick_reads_chunks_and_gives_the_same_numbers(
    prometheus_url: str,
    slo_file: Path,
    database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    at = END - timedelta(hours=3, minutes=17)
    args = [str(slo_file), "--prometheus", prometheus_url, "--at", at.isoformat()]
    _, cold = run_json(capsys, *args)
    _, warm = run_json(capsys, *args)
    _, fresh = run_json(capsys, *args, "--no-cache")
    assert cold[0]["events"] == warm[0]["events"] == fresh[0]["events"]
    assert main(["chunks", "purge", str(slo_file)]) == 0
    assert "dropped 23 chunk(s)" in capsys.readouterr().out


def test_purge_drops_the_slice_history_of_a_timeslice_slo(
    prometheus_url: str,
    tmp_path: Path,
    database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sliced = tmp_path / "sliced.yaml"
    sliced.write_text(
        SLO_YAML.replace(
            "  window: 1d\n",
            "  window: 1d\n  budgetingMethod: Timeslices\n"
            "  timeslice: {length: 5m, target: 99}\n",
        )
    )
    at = END - timedelta(hours=3, minutes=17)
    args = [str(sliced), "--prometheus", prometheus_url, "--at", at.isoformat()]
    _, warm = run_json(capsys, *args)
    _, fresh = run_json(capsys, *args, "--no-cache")
    assert warm[0]["sli"] == fresh[0]["sli"]
    # The window (20:43 the day before to 20:43) holds 23 whole hours: 23 chunks
    # of events and, its hours whole for 5m slices too, 23 of slices.
    assert main(["chunks", "purge", str(sliced)]) == 0
    assert "dropped 46 chunk(s)" in capsys.readouterr().out


def test_spec_cache_serves_unchanged_files_and_never_hides_an_edit(
    prometheus_url: str,
    tmp_path: Path,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache_home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    specs = tmp_path / "specs"
    specs.mkdir()
    path = specs / "slo.yaml"
    path.write_text(SLO_YAML)
    args = [str(specs), "--prometheus", prometheus_url, "--at", END.isoformat()]
    entries = cache_home / "sla" / "specs"

    _, fresh = run_json(capsys, *args, "--no-cache")
    assert not entries.exists()
    _, first = run_json(capsys, *args)
    assert len(list(entries.glob("*.json"))) == 1
    _, cached = run_json(capsys, *args)
    assert cached == first == fresh
    assert len(list(entries.glob("*.json"))) == 1

    # An edit of the same length and a 98 % objective: 2 % errors allowed, the
    # day's 0.5 % spends a quarter of them.
    path.write_text(SLO_YAML.replace("objective: 99\n", "objective: 98\n"))
    _, edited = run_json(capsys, *args)
    assert edited[0]["objective"] == 98
    assert edited[0]["error_budget"]["remaining"] == 1 - 0.5 / 2
    assert len(list(entries.glob("*.json"))) == 2

    path.write_text(SLO_YAML.replace("objective: 99\n", "objective: 100\n"))
    assert main(["eval", *args]) == 1
    assert "spec.objective" in capsys.readouterr().err


def test_invalid_file_exits_one_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SLO_YAML.replace("objective: 99", "objective: 100"))
    assert main(["eval", str(bad), "--prometheus", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert "spec.objective" in err and "100" in err


def test_error_text_that_looks_like_markup_is_printed_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "team[bold]-[red].yaml"
    bad.write_text(SLO_YAML.replace("objective: 99", "objective: 100"))

    assert main(["eval", str(bad), "--prometheus", "http://127.0.0.1:1"]) == 1
    assert f"error: {bad}:" in capsys.readouterr().err


def test_repeated_key_exits_one_before_asking_prometheus(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # SLO_YAML ends on line 14; the repeated window is line 15, under spec.
    bad = tmp_path / "bad.yaml"
    bad.write_text(SLO_YAML + "  window: 7d\n")
    url = f"http://127.0.0.1:{free_port()}"

    assert main(["eval", str(bad), "--prometheus", url]) == 1
    assert (
        f"error: {bad}:15: document 1 (SLODefinition checkout): spec.window: "
        "duplicate key 'window', first on line 7: only the last would be read"
    ) in capsys.readouterr().err


def test_unreachable_prometheus_exits_three_with_a_message(
    slo_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SLA_PROMETHEUS_TIMEOUT_SECONDS", "1")
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["eval", str(slo_file), "--prometheus", url, "--no-cache"])
    assert code == 3
    assert f"datasource {url} unusable" in capsys.readouterr().err


def test_an_address_that_is_not_prometheus_exits_three_saying_so(
    slo_file: Path,
    fake_prometheus: Callable[..., FakePrometheus],
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = "<html><body><h1>Not Found</h1></body></html>"
    web_server = fake_prometheus(Reply(404, page, content_type="text/html"))

    code = main(["eval", str(slo_file), "--prometheus", web_server.url, "--no-cache"])

    assert code == 3
    err = capsys.readouterr().err
    assert "no SLO could be evaluated; shop/checkout: query rejected" in err
    assert f"is {web_server.url}/api/v1/query a Prometheus query API?" in err
    assert "<html>" not in err


def test_an_instant_in_the_future_is_refused_before_anything_is_read(
    slo_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    with pytest.raises(SystemExit) as exited:
        main(
            [
                "eval",
                str(slo_file),
                "--prometheus",
                "http://127.0.0.1:1",
                "--at",
                tomorrow,
            ]
        )

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --at: {tomorrow!r} is in the future" in err


def test_a_password_in_the_prometheus_address_is_never_printed(
    slo_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SLA_PROMETHEUS_TIMEOUT_SECONDS", "1")
    port = free_port()

    code = main(
        [
            "eval",
            str(slo_file),
            "--prometheus",
            f"http://admin:s3cret@127.0.0.1:{port}",
            "--no-cache",
        ]
    )

    assert code == 3
    err = capsys.readouterr().err
    assert f"datasource http://127.0.0.1:{port} unusable" in err
    assert "s3cret" not in err


def test_table_output_shows_the_slo_and_its_status(
    prometheus_url: str,
    slo_file: Path,
    database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["eval", str(slo_file), "--prometheus", prometheus_url, "--at", END.isoformat()]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "shop/checkout" in out and "healthy" in out and "50.00%" in out
