"""The Dockerfile's install steps, run in a clean virtual environment.

No image can be built here (no container engine), so the build stage's commands run
in a fresh venv and the image's CMD serves each function from it: what the image
would hold and how it would start, without the image.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from sla.dev.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.name for p in (REPO_ROOT / "functions").iterdir() if p.is_dir())
START_SECONDS = 60.0


def dockerfile_steps() -> tuple[list[list[str]], list[str]]:
    """The build stage's ``RUN pip …`` commands and the final CMD."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    build = text.split("FROM ", 2)[1]
    installs = [
        shlex.split(command)
        for command in re.findall(r"^RUN (pip install .*)$", build, flags=re.MULTILINE)
    ]
    command = json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)[1])  # type: ignore[index]
    return installs, command


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("image") / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    installs, _ = dockerfile_steps()
    assert installs, "the Dockerfile installs nothing"
    for install in installs:
        subprocess.run(
            [str(root / "bin" / "python"), "-m", *install],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            timeout=900,
        )
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(
    image_venv: Path, database_url: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    name = request.param
    _, command = dockerfile_steps()
    port = free_port()
    env = {
        "PATH": f"{image_venv / 'bin'}:{os.environ.get('PATH', '')}",
        "FUNCTION_SOURCE": str(REPO_ROOT / "functions" / name / "main.py"),
        "PORT": str(port),
        "HOME": str(image_venv),
        "SLA_DATABASE_URL": database_url,
        "SLA_WEBHOOK_AUTH": "none",
        "SLA_API_TOKEN": "image-test-token",
    }
    log = image_venv.parent / f"{name}.log"
    arguments = [*command, f"--source={env['FUNCTION_SOURCE']}", f"--port={port}"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*arguments, "--host=127.0.0.1"],
            cwd=image_venv,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield _wait_live(f"http://127.0.0.1:{port}", process, log)
    finally:
        stop_process(process, timeout=30)


def _wait_live(url: str, process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")
            pytest.fail(f"the function exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(f"{url}/healthz/live", timeout=2) as answer:
                if answer.status < 300:
                    return url
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"{url} did not come up in {START_SECONDS:.0f}s")


def test_the_image_installs_only_the_project(image_venv: Path) -> None:
    packages = subprocess.run(
        [str(image_venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
    )
    names = {p["name"].lower() for p in json.loads(packages.stdout)}
    assert {"sla-management", "functions-framework", "asyncpg"} <= names
    # Development tools stay out of the image.
    assert not names & {"pytest", "mypy", "ruff", "hypothesis"}


@pytest.mark.parametrize("served", FUNCTIONS, indirect=True)
def test_the_image_command_serves_the_function(served: str) -> None:
    with urllib.request.urlopen(f"{served}/healthz/live", timeout=5) as answer:
        assert answer.status in (200, 204)
