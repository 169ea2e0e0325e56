"""The driver seam: who walks an environment's rollout steps.

The controller owns what every environment has (the backend's lifecycle, polling,
the journal, the view, the lock); a :class:`Driver` owns how the rollout moves. Two
kinds exist, chosen by the backend's ``DRIVES_STEPS`` capability
(:func:`cockpit.engine.drivers.driver_class`):

* the machine driver (``drivers/machine.py``): the cockpit walks the steps itself,
  running the pure :class:`~cockpit.engine.machine.RolloutMachine`'s effects against
  a backend that only deploys and shifts traffic (local, docker);
* a mirror driver: the platform walks the steps (Argo Rollouts, Flagger); the driver
  forwards commands and mirrors the platform's phase, step, weights and analysis.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cockpit.adapters.base import DeployBackend, MetricsSource
from cockpit.engine.clock import Clock
from cockpit.engine.commands import Command
from cockpit.engine.migrations import MigrationsController
from cockpit.engine.polling import PollState
from cockpit.engine.reconcile import Snapshot
from cockpit.engine.state import Cause, Revision, RolloutState
from cockpit.model import BackendStatus
from cockpit.plan.models import Environment, Plan


class GateRefused(Exception):
    """A command was refused on observation (the canary is not healthy right before its
    first traffic move): nothing changed. The message says what was seen."""


@dataclass(frozen=True)
class Decision:
    """A command a driver accepted for the state as it is, not yet run."""

    detail: str  # what the journal's "started" record says is about to happen
    note: str  # what the "ok" record says once done ("": the state's reason then)
    plan: object  # the driver's own (the machine driver: a Transition)


class DriverHost(Protocol):
    """What a driver may use of its controller. ``state`` is the one source of truth;
    a driver changes it through :meth:`set_state` (journaled, listeners told) or, for
    what is only shown (a weight moved, a warning seen), by assignment + :meth:`changed`."""

    plan: Plan
    env: Environment
    backend: DeployBackend
    metrics: MetricsSource | None
    migrations: MigrationsController | None  # None: no database with [[migrations]] here
    user: str
    clock: Clock
    state: RolloutState
    versions: tuple[str, ...]
    poll: PollState
    lock: asyncio.Lock
    closing: bool

    def set_state(self, new: RolloutState, note: str, action: str) -> str | None: ...
    def changed(self) -> None: ...
    def journal_quietly(self, action: str, outcome: str, **fields: object) -> str | None: ...
    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]: ...


class Driver(abc.ABC):
    """Moves one environment's rollout. A driver must:

    1. **Apply a command.** :meth:`decide` checks ``command`` against ``host.state``
       without side effects and either raises :class:`~cockpit.engine.machine.Refused`
       with a reason or returns a :class:`Decision`; :meth:`run` then carries it out
       (the host journals "started" in between and holds ``host.lock`` throughout).
       ``run`` returns the error of a failed backend call (the state must then say what
       is known to be true) or raises :class:`GateRefused` (refused on observation) or
       ``Refused`` (a platform said no) when nothing changed.
       :meth:`preview` is :meth:`decide` for the screen: it must stay pure.
    2. **Produce the RolloutState from observations.** :meth:`restore` builds the state
       at start from the journal's last snapshot and the first status; :meth:`observe`
       folds every status poll in (a mirror driver takes phase, step, weights and
       analysis from it; the machine driver only reacts to crash loops and warnings).
       Automatic moves (a crash loop aborting) go through ``host.lock``.
    3. **Run and stop its background work.** Timers, analyses or watches are spawned
       with ``host.spawn`` (a task that dies becomes a visible Degraded state through
       :meth:`crashed`) and are all cancelled by :meth:`stop`.

    Every state change that matters for the record goes through ``host.set_state``
    with ``action="auto"`` for what happened on its own, or the command's action for
    its first step; :meth:`halt` (traffic back to stable, e.g. when the journal fails)
    and :meth:`interrupted` (the cockpit is stopped) must work in any state.
    """

    def __init__(self, host: DriverHost) -> None:
        self.host = host

    @property
    @abc.abstractmethod
    def steps(self) -> tuple[str, ...]:
        """The steps as the screen lists them."""

    @abc.abstractmethod
    def initial(self, stable_version: str, revisions: Sequence[Revision]) -> RolloutState:
        """The state before anything is observed: ``stable_version`` serves all traffic."""

    @abc.abstractmethod
    def decide(self, command: Command, reason: str = "") -> Decision:
        """Accept ``command`` for ``host.state`` or raise ``Refused``. Pure. ``reason`` is
        the person's, for the state's own reason ("aborted by ann: looks off")."""

    def preview(self, command: Command) -> str | None:
        from cockpit.engine.machine import Refused

        try:
            self.decide(command)
        except Refused as err:
            return str(err)
        return None

    @abc.abstractmethod
    async def run(self, decision: Decision, action: str, reason: str) -> str | None:
        """Carry ``decision`` out (``host.lock`` held). Returns a backend error, if any."""

    async def connect(self, attach: bool) -> None:  # noqa: B027 - most drivers need nothing
        """The backend is up (started, or attached when ``attach``): take what :meth:`restore`
        needs beyond the status (the mirror driver reads the platform's rollout here)."""

    @abc.abstractmethod
    def restore(self, snapshot: Snapshot | None, status: BackendStatus | None) -> list[str]:
        """Set ``host.state`` at start; returns the notes to journal as ``reconcile``."""

    @abc.abstractmethod
    def observe(self, status: BackendStatus) -> None:
        """Fold one status poll into ``host.state`` (never blocks; may spawn work)."""

    @abc.abstractmethod
    async def halt(self, reason: str, cause: Cause) -> None:
        """Send traffic back to stable now, if a rollout is on (``host.lock`` held)."""

    @abc.abstractmethod
    def crashed(self, error: str) -> None:
        """A background task died: make the state say so (Degraded, never silent)."""

    @abc.abstractmethod
    def interrupted(self, why: str) -> None:
        """The cockpit is being stopped mid-way: the state records it (no effects)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Cancel every background task of the driver and wait for them."""


DriverFactory = Callable[[DriverHost], Driver]
