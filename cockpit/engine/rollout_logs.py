"""Each rollout's canary log lines, kept with the rollout in the journal's store.

The live log rings hold the newest lines of everything; under load the failing
canary's lines fall off them within minutes, and with them the evidence of why a
rollout was aborted. The keeper taps each environment's log sink while a rollout is
on: it keeps the canary's lines (the newest ``keep`` of them, plus up to
``after_lines`` in the ``after_seconds`` after the rollout ended: the canary's last
words), and writes them to the store in batches, in a worker thread, every
``flush_seconds``. The tap itself only filters a batch and appends to a bounded deque,
so a log flood costs the event loop almost nothing and memory stays flat.

A rollout starts when an environment enters a rollout (Progressing or Paused) or its
target version changes; it ends when the environment leaves it (Healthy, Aborted,
Degraded). Text is redacted by the store before it is written. A store that cannot be
written loses these lines (said once in the log), never the rollout: this is evidence,
not the journal of record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from cockpit.engine.clock import SYSTEM_CLOCK, Clock
from cockpit.engine.controller import EnvironmentController
from cockpit.engine.store import JournalWriteError, KeptLine, Store
from cockpit.model import LogLine, LogSink, Track
from cockpit.secrets import redact

log = logging.getLogger(__name__)


@dataclass
class Capture:
    """The canary lines of one rollout of one environment, not yet written."""

    env: str
    target_version: str
    log_id: int
    pending: deque[KeptLine]
    seq: int = 0  # lines seen so far (the next line's number is seq + 1)
    ended_at: float | None = None  # when the rollout ended (the clock's time)
    outcome: str = ""
    after: int = 0  # lines kept after the end
    closed: bool = False  # no more lines: the next flush writes the end
    end_written: bool = False
    written: list[int] = field(default_factory=list)  # batch sizes written (tests and the log)


class RolloutLogKeeper:
    def __init__(
        self,
        store: Store,
        service: str,
        clock: Clock = SYSTEM_CLOCK,
        *,
        keep: int = 2000,
        after_lines: int = 200,
        after_seconds: float = 5.0,
        flush_seconds: float = 1.0,
        retain: int = 20,
    ) -> None:
        self.store = store
        self.service = service
        self.clock = clock
        self.keep = keep
        self.after_lines = after_lines
        self.after_seconds = after_seconds
        self.flush_seconds = flush_seconds
        self.retain = retain
        self.captures: dict[str, Capture] = {}
        self._ending: list[Capture] = []  # ended, their last lines not yet written
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self._failed = False

    # ------------------------------------------------------------------ wiring

    def tap(self, env: str, sink: LogSink) -> LogSink:
        """``sink`` (the environment's log ring), also feeding the rollout under way."""

        def feed(lines: Sequence[LogLine]) -> None:
            sink(lines)
            capture = self.captures.get(env)
            if capture is not None and not capture.closed:
                self._add(capture, lines)

        return feed

    def watch(self, controller: EnvironmentController) -> None:
        """Follow ``controller``'s rollouts: begin and end a capture as its phase moves."""
        controller.add_change_listener(lambda: self._changed(controller))

    # ------------------------------------------------------------------ the hot path

    def _add(self, capture: Capture, lines: Sequence[LogLine]) -> None:
        canary = [line for line in lines if line.track is Track.CANARY]
        if not canary:
            return
        if capture.ended_at is not None:
            room = self.after_lines - capture.after
            if room <= 0 or self.clock.now() - capture.ended_at > self.after_seconds:
                self._close(capture)
                return
            canary = canary[:room]
            capture.after += len(canary)
        first = capture.seq + 1
        capture.seq += len(canary)
        capture.pending.extend(
            KeptLine(first + i, line.ts, line.source, line.text) for i, line in enumerate(canary)
        )
        self._schedule_flush()

    # ------------------------------------------------------------------ rollouts begin and end

    def _changed(self, controller: EnvironmentController) -> None:
        state = controller.state
        env = controller.env.name
        capture = self.captures.get(env)
        if state.in_rollout and state.target_version:
            if capture is None or capture.ended_at is not None or capture.target_version != state.target_version:
                if capture is not None and capture.ended_at is None:
                    self._end(capture, "superseded")
                self._begin(env, state.target_version)
        elif capture is not None and capture.ended_at is None:
            self._end(capture, state.phase.value)

    def _begin(self, env: str, target_version: str) -> None:
        newest = self.store.records(service=self.service, env=env, limit=1)
        first_record = newest[-1].id if newest else 0
        try:
            log_id = self.store.open_rollout_log(
                self.service, env, target_version, first_record, self.clock.now(), self.retain
            )
        except JournalWriteError as err:
            self._lost(err)
            log_id = 0
        pending: deque[KeptLine] = deque(maxlen=self.keep + self.after_lines)
        self.captures[env] = Capture(env, target_version, log_id, pending)

    def _end(self, capture: Capture, outcome: str) -> None:
        capture.ended_at = self.clock.now()
        capture.outcome = outcome
        self._ending.append(capture)
        with contextlib.suppress(RuntimeError):  # no loop (a synchronous caller): close() ends it
            asyncio.get_running_loop().call_later(self.after_seconds, self._close, capture)

    def _close(self, capture: Capture) -> None:
        if capture.closed:
            return
        capture.closed = True
        if self.captures.get(capture.env) is capture:
            del self.captures[capture.env]
        self._schedule_flush(at_once=True)

    # ------------------------------------------------------------------ writing, off the loop

    def _schedule_flush(self, at_once: bool = False) -> None:
        if self._flush_handle is not None and not at_once:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the lines wait for flush() or close()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush_handle = loop.call_later(0 if at_once else self.flush_seconds, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        task = asyncio.get_running_loop().create_task(self.flush(), name="rollout-log-flush")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Write every capture's pending lines (one transaction each, in a worker thread)
        and the end of those that are over."""
        async with self._write_lock:
            for capture in [*self.captures.values(), *self._ending]:
                await self._write(capture)
            self._ending = [c for c in self._ending if not (c.end_written and not c.pending)]

    async def _write(self, capture: Capture) -> None:
        batch = list(capture.pending)
        capture.pending.clear()
        keep = self.keep + capture.after
        try:
            if batch and capture.log_id:
                await asyncio.to_thread(self.store.keep_rollout_lines, capture.log_id, batch, keep)
                capture.written.append(len(batch))
            if capture.closed and not capture.end_written and capture.ended_at is not None:
                capture.end_written = True
                if capture.log_id:
                    await asyncio.to_thread(
                        self.store.close_rollout_log,
                        capture.log_id,
                        capture.outcome,
                        capture.ended_at,
                        capture.seq,
                    )
        except JournalWriteError as err:
            self._lost(err)

    def _lost(self, err: JournalWriteError) -> None:
        if not self._failed:  # once: a full disk would say it at every batch
            self._failed = True
            log.warning("rollout canary lines are not being kept: %s", redact(str(err)))

    async def close(self) -> None:
        """Write what is pending (the cockpit is stopping); rollouts that ended are closed,
        one still under way keeps what it has."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for capture in list(self._ending):
            capture.closed = True
            if self.captures.get(capture.env) is capture:
                del self.captures[capture.env]
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()
