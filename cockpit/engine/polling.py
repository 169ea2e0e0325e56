"""Polling the backend's status and the metrics source, with backoff while unreachable.

The poller only reads and remembers; what an observation *means* for the rollout is
the driver's business (``on_status``), so polls never change the rollout themselves.
"""

from __future__ import annotations

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
    metrics_error: str | None = None

    def failed(self, error: BackendError | str, delay: float, now: float) -> None:
        self.error = redact(str(error))
        self.retry_at = now + delay

    def recovered(self) -> None:
        self.error, self.retry_at, self.failures = None, None, 0


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
        while True:
            started = self.clock.monotonic()
            try:
                await metrics.collect()
                self.state.metrics.append(await metrics.window(interval * 2))
                self.state.metrics_error = None
            except BackendError as err:
                self.state.metrics_error = redact(str(err))
            self.on_change()
            # Schedule after the last poll ended so polls never overlap.
            await self.clock.sleep(max(0.05, interval - (self.clock.monotonic() - started)))
