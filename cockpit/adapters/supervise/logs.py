"""Delivery of supervised children's log lines to the engine's sink, in batches."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from cockpit.adapters.base import LogLine, LogSink, Track

BACKLOG = 5000  # lines kept until a sink is attached (the start-up lines matter most)


class LogTarget(Protocol):
    """Where a supervised child's output and the supervisor's own notes go."""

    def emit(self, source: str, track: Track | None, texts: Iterable[str]) -> None: ...

    def note(self, text: str, level: str = "info", track: Track | None = None) -> None: ...


class LogHub:
    """Turns raw lines into :class:`LogLine` batches for the sink.

    Before a sink is attached, lines wait in a bounded backlog (the oldest fall off and
    are counted), so the lines of ``start()`` are not lost when the engine attaches its
    sink afterwards."""

    def __init__(self, env: str, notes_source: str) -> None:
        self.env = env
        self.notes_source = notes_source  # the source name of the supervisor's own lines
        self._sink: LogSink | None = None
        self._backlog: deque[LogLine] = deque(maxlen=BACKLOG)
        self.dropped = 0
        self.sink_errors = 0

    def attach(self, sink: LogSink) -> None:
        self._sink = sink
        if self._backlog:
            pending, self._backlog = list(self._backlog), deque(maxlen=BACKLOG)
            self._deliver(pending)

    def emit(self, source: str, track: Track | None, texts: Iterable[str]) -> None:
        ts = time.time()
        batch = [LogLine(ts=ts, env=self.env, source=source, track=track, text=t) for t in texts]
        if not batch:
            return
        if self._sink is None:
            overflow = len(self._backlog) + len(batch) - BACKLOG
            if overflow > 0:
                self.dropped += min(overflow, len(self._backlog) + len(batch))
            self._backlog.extend(batch)
            return
        self._deliver(batch)

    def note(self, text: str, level: str = "info", track: Track | None = None) -> None:
        """A line from the supervisor itself (what it did, what went wrong)."""
        self.emit(self.notes_source, track, [f"{level}: {text}"])

    def _deliver(self, batch: list[LogLine]) -> None:
        assert self._sink is not None
        try:
            self._sink(batch)
        except Exception:  # a faulty sink must not kill the log pumps
            self.sink_errors += 1
