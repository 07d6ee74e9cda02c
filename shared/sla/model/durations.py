"""Durations in Prometheus syntax, held as whole seconds.

Specs write durations the way PromQL does (``5m``, ``1h30m``, ``28d``, ``4w``);
outputs write them in days, hours, minutes and seconds only (``30d``, ``6h26m``).
"""

from __future__ import annotations

import functools
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNIT_SECONDS = {
    "y": 365 * 86400,
    "w": 7 * 86400,
    "d": 86400,
    "h": 3600,
    "m": 60,
    "s": 1,
}
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$"
)


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus duration; ValueError naming the text if it is not."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like 5m, 1h30m, 28d or 4w")
    seconds = sum(
        int(amount) * _UNIT_SECONDS[unit]
        for amount, unit in zip(match.groups(), "ywdhms", strict=True)
        if amount
    )
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


@functools.lru_cache(maxsize=4096)
def format_duration(seconds: int) -> str:
    """``2_592_000`` → ``30d``, ``23160`` → ``6h26m``: days, hours, minutes, seconds."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def _coerce_duration(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value!r} is not a positive duration")
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"{value!r} is not a duration like 5m, 1h30m, 28d or 4w")


Duration = Annotated[
    int,
    BeforeValidator(_coerce_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A positive duration in seconds, read from ``5m``-style text, written back as text."""
