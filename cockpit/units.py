"""Small value types shared by the plan and the adapters' option models."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_DURATION = 30 * 86400.0
"""Longer than any release step should take; far below where timers overflow."""


def parse_duration(value: object) -> float:
    """Seconds from ``"500ms"``, ``"10s"``, ``"2m"``, ``"1h"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '500ms' or '2m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _FACTORS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as '30s', '500ms' or '2m', found {value!r}")
    # nan and inf pass every comparison check quietly (nan < 0 is False): an analysis
    # interval of nan would never end, so refuse them here, before any limit is tried.
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration such as '30s', found {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, found {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"expected a duration of at most 30 days, found {value!r}")
    return seconds


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("expected a duration greater than 0, such as '1s'")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in the plan as ``"30s"``, ``"500ms"``, ``"2m"`` or a number."""

PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]
"""A :data:`Duration` where 0 makes no sense (an interval, a timeout that must allow time)."""


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:g}s"
    if seconds < 7200:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
