"""Child processes of ``sla dev`` and its demo: stopping them, reading their logs."""

from __future__ import annotations

import subprocess
from pathlib import Path

STOP_TIMEOUT_SECONDS = 10.0


def stop_process(
    process: subprocess.Popen[bytes], *, timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """Terminate, then kill after ``timeout``; safe to call twice."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a word saying there is none."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
