"""Polling the backend's status and the metrics source, with backoff while unreachable.

The poller only reads and remembers; what an observation *means* for the rollout is
the driver's business (``on_status``), so polls never change the rollout themselves.

Each loop runs one poll at a time: the next starts only after the last one ended, so
a slow source never has two polls in flight. A metrics source that fails, or has not
answered ``METRICS_SLOW_AFTER`` seconds into a poll, is shown as such at once and
polled again after a backoff (1, 2, 4 ... 30 s, never sooner than the interval), with
the time of the next attempt in ``metrics_retry_at``; the first good poll clears both.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cockpit.adapters.base import BackendError, DeployBackend, MetricsSource
from cockpit.engine.clock import Clock
from cockpit.model import BackendStatus, MetricsWindow
from cockpit.secrets import redact

METRICS_HISTORY = 120  # samples kept for sparklines (2 minutes at 1 s)
STATUS_INTERVAL = 1.0
BACKOFF_MAX = 30.0
METRICS_SLOW_AFTER = 5.0  # a metrics poll unanswered this long (or two intervals) shows as slow


def backoff(failures: int) -> float:
    """Seconds before the next attempt after ``failures`` failures in a row: 1, 2, 4... 30."""
    return min(BACKOFF_MAX, 2.0 ** min(max(failures, 1) - 1, 5))


@dataclass
class PollState:
    """What the polls last saw; the view shows it as it is."""

    status: BackendStatus | None = None
    error: str | None = None  # set while the backend is unreachable
    retry_at: float | None = None  # wall time of the next attempt
    failures: int = 0
    metrics: deque[MetricsWindow] = field(default_factory=lambda: deque(maxlen=METRICS_HISTORY))
    metrics_error: str | None = None  # set while the metrics source fails or is slow
    metrics_retry_at: float | None = None  # wall time of the next metrics poll while it does
    metrics_failures: int = 0

    def failed(self, error: BackendError | str, delay: float, now: float) -> None:
        self.error = redact(str(error))
        self.retry_at = now + delay

    def recovered(self) -> None:
        self.error, self.retry_at, self.failures = None, None, 0

    def metrics_failed(self, error: str, delay: float, now: float) -> None:
        self.metrics_error = redact(error)
        self.metrics_retry_at = now + delay

    def metrics_recovered(self) -> None:
        self.metrics_error, self.metrics_retry_at, self.metrics_failures = None, None, 0


class Poller:
    def __init__(
        self,
        clock: Clock,
        on_change: Callable[[], None],
        delay: Callable[[], float],
        state: PollState | None = None,
    ) -> None:
        self.clock = clock
        self.on_change = on_change
        self.delay = delay  # backoff after the failures counted so far
        self.state = state or PollState()

    async def status_loop(self, backend: DeployBackend, on_status: Callable[[BackendStatus], None]) -> None:
        while True:
            delay = STATUS_INTERVAL
            try:
                self.state.status = await backend.status()
                if self.state.error is not None:
                    self.state.recovered()
                on_status(self.state.status)
            except BackendError as err:
                self.state.failures += 1
                delay = self.delay()
                self.state.failed(err, delay, self.clock.now())
            self.on_change()
            await self.clock.sleep(delay)

    async def metrics_loop(self, metrics: MetricsSource, interval: float) -> None:
        slow_after = max(METRICS_SLOW_AFTER, 2 * interval)
        while True:
            started = self.clock.monotonic()
            error = await self._metrics_poll(metrics, interval, slow_after)
            elapsed = self.clock.monotonic() - started
            if error is None and elapsed > slow_after:
                error = f"metrics source slow: the last poll took {elapsed:.1f}s"
            if error is None:
                self.state.metrics_recovered()
                delay = max(0.05, interval - elapsed)  # the next poll starts after this one ended
            else:
                self.state.metrics_failures += 1
                delay = max(interval, backoff(self.state.metrics_failures))
                self.state.metrics_failed(error, delay, self.clock.now())
            self.on_change()
            await self.clock.sleep(delay)

    async def _metrics_poll(self, metrics: MetricsSource, interval: float, slow_after: float) -> str | None:
        """One poll; the error to show, or ``None``. A poll still running after
        ``slow_after`` is shown as slow at once, and awaited: never a second one beside it."""
        poll = asyncio.ensure_future(self._read_metrics(metrics, interval))
        timer = asyncio.ensure_future(self.clock.sleep(slow_after))
        try:
            await asyncio.wait({poll, timer}, return_when=asyncio.FIRST_COMPLETED)
            if not poll.done():
                self.state.metrics_error = f"metrics source slow: no answer after {slow_after:g}s (still waiting)"
                self.state.metrics_retry_at = None  # the next attempt is this one, still running
                self.on_change()
                await asyncio.wait({poll})
        finally:
            timer.cancel()
            poll.cancel()  # no-op once done; stops the poll when the loop itself is cancelled
        return poll.result()

    async def _read_metrics(self, metrics: MetricsSource, interval: float) -> str | None:
        try:
            await metrics.collect()
            self.state.metrics.append(await metrics.window(interval * 2))
        except BackendError as err:
            return str(err)
        return None
