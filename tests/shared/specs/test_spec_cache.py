"""The spec cache of ``sla eval``: keyed by everything a conversion depends on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sla.model.slo import SLODefinition
from sla.specs import load_paths
from sla.specs.cache import ENTRIES_KEPT, SpecCache, spec_digest

SLO_YAML = """\
apiVersion: sla.dev/v1alpha1
kind: SLODefinition
metadata: {{name: {name}, namespace: shop}}
spec:
  service: checkout
  objective: {objective}
  window: 28d
  indicator:
    ratio:
      good: {{metric: 'http_requests_total{{job="checkout", code="200"}}'}}
      total: {{metric: 'http_requests_total{{job="checkout"}}'}}
"""


def write_slo(directory: Path, name: str, objective: str = "99.9") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(SLO_YAML.format(name=name, objective=objective))
    return path


def definitions(paths: list[Path]) -> list[SLODefinition]:
    result = load_paths(paths)
    assert result.ok, result.errors
    return [o for o in result.objects if isinstance(o, SLODefinition)]


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    directory = tmp_path / "specs"
    directory.mkdir()
    for name in ("checkout", "payments"):
        write_slo(directory, name)
    return directory


def test_an_entry_gives_back_the_definitions_it_was_given(
    specs: Path, tmp_path: Path
) -> None:
    cache = SpecCache(tmp_path / "cache")
    key = spec_digest([specs])
    assert key is not None
    loaded = definitions([specs])

    assert cache.get(key) is None
    cache.put(key, loaded)

    assert cache.get(key) == loaded
    assert [str(d.spec.objective) for d in loaded] == ["99.9", "99.9"]


def test_the_key_changes_with_a_file_a_new_file_and_the_scrape_interval(
    specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = spec_digest([specs])
    assert spec_digest([specs]) == first

    write_slo(specs, "checkout", objective="99.5")
    edited = spec_digest([specs])
    write_slo(specs, "search")
    added = spec_digest([specs])
    monkeypatch.setenv("SLA_SCRAPE_INTERVAL_SECONDS", "15")
    faster_scrapes = spec_digest([specs])

    assert len({first, edited, added, faster_scrapes}) == 4


def test_the_key_tells_files_apart_by_path(tmp_path: Path) -> None:
    # The same bytes under two names are two different inputs.
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    write_slo(one, "checkout")
    write_slo(two, "checkout")

    assert spec_digest([one]) != spec_digest([two])


def test_no_key_when_a_path_is_missing(specs: Path) -> None:
    assert spec_digest([specs, specs / "absent.yaml"]) is None


def test_a_damaged_entry_is_a_miss(specs: Path, tmp_path: Path) -> None:
    cache = SpecCache(tmp_path / "cache")
    key = spec_digest([specs])
    assert key is not None
    cache.put(key, definitions([specs]))
    entry = tmp_path / "cache" / f"{key}.json"
    entry.write_bytes(entry.read_bytes()[:-20])

    assert cache.get(key) is None


def test_an_unwritable_cache_is_no_error(specs: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory would be")
    cache = SpecCache(blocker / "specs")
    key = spec_digest([specs])
    assert key is not None

    cache.put(key, definitions([specs]))

    assert cache.get(key) is None
    assert blocker.read_text() == "a file where the cache directory would be"


def test_only_the_most_recently_used_entries_are_kept(
    specs: Path, tmp_path: Path
) -> None:
    cache = SpecCache(tmp_path / "cache")
    loaded = definitions([specs])
    keys = [f"{n:064x}" for n in range(ENTRIES_KEPT)]
    for age, key in enumerate(keys):
        cache.put(key, loaded)
        # Modification times a second apart, oldest first, whatever the clock's
        # resolution.
        moment = 1_700_000_000 + age
        os.utime(tmp_path / "cache" / f"{key}.json", (moment, moment))
    # Reading the oldest makes it the most recently used.
    assert cache.get(keys[0]) == loaded

    newer = [f"{n:064x}" for n in range(ENTRIES_KEPT, ENTRIES_KEPT + 3)]
    for key in newer:
        cache.put(key, loaded)

    kept = {path.stem for path in (tmp_path / "cache").glob("*.json")}
    assert len(kept) == ENTRIES_KEPT
    # The three oldest entries not read since made room for the three new ones.
    assert kept == {keys[0], *keys[4:], *newer}
    assert not list((tmp_path / "cache").glob(".*.tmp"))
