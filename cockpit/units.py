"""Small value types shared by the plan and the adapters' option models."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

# One part of a duration: a number and its unit. A duration is one or more parts, largest
# unit first, each unit at most once: "1m30s", "1h 15m", "1.5s", "250ms".
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)")
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
_FACTORS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_ORDER = list(_FACTORS)  # largest first
MAX_DURATION = 30 * 86400.0
"""Longer than any release step should take; far below where timers overflow."""

EXAMPLES = "such as '30s', '500ms', '2m' or '1m30s'"


def _parse_text(text: str) -> float:
    """Seconds from a duration's text, or ``ValueError`` saying which part is wrong."""
    if match := _NUMBER.match(text):  # a bare number: seconds
        return float(match.group(1))
    compact = text.strip()
    if not compact:
        raise ValueError(f"expected a duration {EXAMPLES}, found an empty string")
    seconds, pos, last = 0.0, 0, -1
    while pos < len(compact):
        if compact[pos].isspace():
            pos += 1
            continue
        part = _PART.match(compact, pos)
        if part is None:
            raise ValueError(
                f"expected a duration {EXAMPLES} (units h, m, s, ms), found {text!r}:"
                f" cannot read {compact[pos:]!r}"
            )
        unit = part.group(2)
        order = _ORDER.index(unit)
        if order <= last:
            # "30s1m" or "1m1m": almost surely a typo, never silently summed.
            raise ValueError(
                f"expected the units of a duration once each, largest first (h, m, s, ms), found {text!r}"
            )
        last = order
        seconds += float(part.group(1)) * _FACTORS[unit]
        pos = part.end()
    return seconds


def parse_duration(value: object) -> float:
    """Seconds from ``"500ms"``, ``"10s"``, ``"2m"``, ``"1h"``, a compound such as
    ``"1m30s"`` or ``"1h 15m"``, or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration {EXAMPLES}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise ValueError(f"expected a duration {EXAMPLES}, found {value!r}")
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
"""Seconds, written in the plan as ``"30s"``, ``"500ms"``, ``"2m"``, ``"1m30s"`` or a number."""

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
