"""Bounded log buffers: memory stays flat however fast sources write.

Each buffer is a ring of the newest ``capacity`` lines addressed by absolute line
number (``first`` .. ``end - 1``), so a view can cache rendered lines by number and
knows exactly how many fell off the front (``dropped``). Appends are O(batch) and
never block; readers take slices by absolute number.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from cockpit.model import LogLine


class LogBuffer:
    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self.end = 0  # absolute number of the next line appended
        self.dropped = 0  # lines that fell off the front because the ring was full

    @property
    def first(self) -> int:
        return self.end - len(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def extend(self, lines: Sequence[LogLine]) -> None:
        overflow = len(self._lines) + len(lines) - self.capacity
        if overflow > 0:
            self.dropped += overflow
        self._lines.extend(lines)
        self.end += len(lines)

    def get(self, number: int) -> LogLine | None:
        index = number - self.first
        if 0 <= index < len(self._lines):
            return self._lines[index]
        return None

    def since(self, number: int) -> list[LogLine]:
        """Lines from absolute ``number`` on (clamped to what is still held)."""
        start = max(number, self.first) - self.first
        if start >= len(self._lines):
            return []
        # deque slicing is O(n) from the nearer end; tail reads are the common case.
        if start > len(self._lines) // 2:
            tail = len(self._lines) - start
            return [self._lines[-tail + i] for i in range(tail)]
        return list(self._lines)[start:]

    def tail(self, count: int) -> list[LogLine]:
        count = min(count, len(self._lines))
        return [self._lines[-count + i] for i in range(count)] if count else []


class LogHub:
    """One buffer per environment; adapters' sinks append here."""

    def __init__(self, envs: Iterable[str], capacity: int = 20_000) -> None:
        self.buffers = {env: LogBuffer(capacity) for env in envs}

    def sink_for(self, env: str):
        buffer = self.buffers[env]
        return buffer.extend
