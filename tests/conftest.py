"""Plugins for every test: the harnesses in tests/support that provide fixtures.

They are registered here, at the top, so pytest rewrites their assertions and their
fixtures reach every test module that imports helpers from them.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.support.prometheus",
    "tests.support.kube",
    "tests.support.store",
]


@pytest.fixture(autouse=True, scope="session")
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """User cache directories (``sla eval``'s spec cache) live in a temporary
    directory, not in the home of whoever runs the tests."""
    directory = tmp_path_factory.mktemp("cache-home")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(directory)
    yield directory
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous
