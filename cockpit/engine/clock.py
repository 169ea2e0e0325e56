"""Time as the engine sees it, injectable so tests control it instead of patching ``time``.

Wall time (``now``) is what records carry (journal rows, revisions, pause deadlines);
monotonic time measures durations and schedules polls, immune to clock changes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for durations."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock. Reads ``time`` at each call (never caches the functions), so the
    snapshot tests that freeze ``time.time`` for the whole process still see one value."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
