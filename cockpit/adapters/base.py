"""The adapter contract: small typed roles every backend implements.

Data flows one way: adapters produce observations (status, log lines, metric
windows), the engine folds them into state, the UI renders state. Intents go
UI -> engine -> adapters. Nothing here imports Textual or a platform SDK; an
adapter that wraps a blocking SDK calls it off the event loop
(``asyncio.to_thread``) so a slow platform never freezes the screen.

Roles
-----
* :class:`DeployBackend` - runs versions and splits traffic (stable/canary).
* :class:`MetricsSource` - request rate, error rate and latency per track.
* Logs are pushed by the backend into a :data:`LogSink` in batches.

Each role declares :class:`Capability` flags so the screen can grey out what a
backend cannot do, and every failure is one of the typed errors below so the
engine can say precisely what went wrong.
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from cockpit.adapters.rollouts import PlatformRollout
    from cockpit.plan.models import Check, Step

from pydantic import BaseModel, ConfigDict

# The observation types moved to cockpit.model (shared with the engine and the UI); they
# stay importable from here so backends written against this module keep working.
from cockpit.model import (
    NO_DATA,
    BackendStatus,
    LogLine,
    LogSink,
    MetricsWindow,
    Track,
    TrackMetrics,
    TrackStatus,
)

__all__ = [
    "NO_DATA",
    "AdapterContext",
    "AmbiguousQuery",
    "BackendConfigError",
    "BackendError",
    "BackendStatus",
    "BackendUnavailable",
    "Capability",
    "CapabilityMissing",
    "DeployBackend",
    "HealthCheckFailed",
    "LogLine",
    "LogSink",
    "MetricsSource",
    "MetricsWindow",
    "NoOptions",
    "PortInUse",
    "Track",
    "TrackMetrics",
    "TrackStatus",
    "VersionNotFound",
]


class Capability(enum.StrEnum):
    """What a backend can do; the UI greys out actions whose capability is missing."""

    SET_WEIGHT = "set-weight"  # fine-grained canary weight (not only 0/100)
    BLUE_GREEN = "blue-green"  # atomic 0 -> 100 switch between two full stacks
    LOGS = "logs"  # pushes log lines of its workloads
    SCRAPE_TARGETS = "scrape-targets"  # exposes /metrics URLs per track
    ROLLBACK_TO_REVISION = "rollback-to-revision"  # can run any retained version again
    MIGRATIONS = "migrations"
    OWNS_WORKLOADS = "owns-workloads"  # workloads live and die with the cockpit (local)
    DRIVES_STEPS = "drives-steps"  # the platform walks the steps itself (Argo Rollouts): mirror it


# --------------------------------------------------------------------------- errors


class BackendError(Exception):
    """Base of every adapter failure. ``str(err)`` is a one-line, user-facing message
    that never contains a secret value."""

    retryable: ClassVar[bool] = False


class BackendUnavailable(BackendError):
    """The platform cannot be reached right now (connection refused, timeout).
    The engine shows the column as down and retries with backoff."""

    retryable = True


class BackendConfigError(BackendError):
    """The adapter options in the plan are wrong (found vs expected)."""


class VersionNotFound(BackendError):
    """The requested version does not exist on this backend."""


class PortInUse(BackendConfigError):
    """A port the plan asks for is already taken by another process."""


class HealthCheckFailed(BackendError):
    """New workloads never became healthy within the deadline; no traffic was sent to them."""


class AmbiguousQuery(BackendError):
    """A query expected to give one number returned several series (or none could be
    told apart); the message names the query. Never resolved by picking one."""


class CapabilityMissing(BackendError):
    """The backend was asked for something it declared it cannot do."""


class CommandRefused(BackendError):
    """The platform refused a command as not legal in its state; nothing changed."""


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What the engine hands every adapter it creates."""

    service: str
    env: str
    run_dir: Path  # private runtime dir (pid files, sockets) for this service/env
    options: Mapping[str, Any] = field(default_factory=dict)  # the env's backend options
    secrets: Callable[[str], str] | None = None  # resolves "keyring:..."/"env:..." refs
    state_dir: Path | None = None  # the session's state dir (the local demo keeps its databases there)


class NoOptions(BaseModel):
    """The options of an adapter that takes none: any key in the plan is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- roles


class DeployBackend(abc.ABC):
    """Runs a service's versions in one environment and splits traffic between them.

    Construction: the engine validates the plan's ``[env.backend.options]`` table with
    the class's ``Options`` model (a pydantic model; unknown keys should be an error) and
    calls ``cls(ctx, options)`` (see ``registry.create_backend``). The constructor only
    stores what it is given: it must not reach the platform, so a plan can be checked and
    a screen drawn while the platform is down.

    Lifecycle: ``start`` (own and bring up the environment) or ``attach`` (observe
    what already runs, change nothing), then actions, then ``close``. Every action
    either completes or raises a :class:`BackendError` leaving traffic on a healthy
    track: an adapter never half-applies a traffic change.
    """

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    Options: ClassVar[type[BaseModel]] = NoOptions
    """The model of this backend's options in a plan; ``NoOptions`` if it takes none."""

    def __init__(self, ctx: AdapterContext, options: BaseModel) -> None:
        self.ctx = ctx
        self.options = options

    @abc.abstractmethod
    async def start(self, stable_version: str) -> None:
        """Bring the environment up running ``stable_version`` at 100 %.
        Adapters that observe an existing platform (Kubernetes) verify it instead."""

    @abc.abstractmethod
    async def attach(self) -> None:
        """Connect to an environment someone else started, read-only.
        Raises :class:`BackendUnavailable` when nothing is running."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources. Owned workloads (``OWNS_WORKLOADS``) are stopped."""

    @abc.abstractmethod
    async def status(self) -> BackendStatus: ...

    @abc.abstractmethod
    async def versions(self) -> Sequence[str]:
        """Versions this backend can run, oldest first."""

    @abc.abstractmethod
    async def deploy_canary(self, version: str) -> None:
        """Start ``version`` as the canary at weight 0 and wait until it is healthy.
        Raises :class:`VersionNotFound` or :class:`HealthCheckFailed`."""

    @abc.abstractmethod
    async def set_weight(self, weight: int) -> None:
        """Send ``weight`` percent of new requests to the canary. Requests in flight
        finish where they started."""

    @abc.abstractmethod
    async def promote_canary(self) -> None:
        """Make the canary the stable track at 100 % and retire the old stable
        after its in-flight requests have drained."""

    @abc.abstractmethod
    async def remove_canary(self) -> None:
        """Send all traffic to stable at once, then scale the canary down (abort)."""

    @abc.abstractmethod
    async def deploy_stable(self, version: str) -> None:
        """Replace the stable track by ``version`` with an immediate, drained cut-over
        (used by rollback). Any canary is removed first."""

    def attach_log_sink(self, sink: LogSink) -> None:  # noqa: B027 - optional role
        """Receive log lines of this environment's workloads (``LOGS`` capability)."""

    def scrape_targets(self) -> Mapping[Track, Sequence[str]]:
        """``/metrics`` URLs per track (``SCRAPE_TARGETS`` capability)."""
        raise CapabilityMissing(f"the {self.name} backend exposes no scrape targets")


class MetricsSource(abc.ABC):
    """Request rate, error rate and latency per track, over a time window.

    Construction: like a backend, ``cls(ctx, options, backend)`` with ``options`` validated
    by the class's ``Options`` model; ``backend`` is the environment's deploy backend,
    for sources that read its scrape targets or state. No I/O in the constructor.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions
    """The model of this source's options in a plan; ``NoOptions`` if it takes none."""

    def __init__(self, ctx: AdapterContext, options: BaseModel, backend: DeployBackend) -> None:
        self.ctx = ctx
        self.options = options
        self.backend = backend

    async def collect(self) -> None:  # noqa: B027 - sources that pull keep history here
        """Take one sample now (scrape sources); the engine calls it on a timer."""

    @abc.abstractmethod
    async def window(self, seconds: float) -> MetricsWindow:
        """Aggregates over the last ``seconds``. Raises :class:`BackendUnavailable`
        when the source cannot be read."""

    track_versions: Mapping[Track, str] = MappingProxyType({})
    """The version each track runs now, as last told by :meth:`set_versions`."""

    def set_versions(self, versions: Mapping[Track, str]) -> None:
        """The versions the tracks run now. The engine calls it whenever they change, so
        sources whose queries select by version (``{version}``) can fill it in."""
        self.track_versions = MappingProxyType(dict(versions))

    async def query(self, expr: str, *, track: Track = Track.CANARY, seconds: float | None = None) -> float | None:
        """Evaluate a source-specific query to one number (``None``: no data).

        ``expr`` may hold placeholders the source fills for ``track``: ``{service}``,
        ``{env}``, ``{track}`` (``canary``/``stable``), ``{version}`` (from
        :meth:`set_versions`) and ``{interval}`` (``seconds`` as a query duration);
        sources may offer more. Several series where one number is expected raise
        :class:`AmbiguousQuery` naming the query; an unreadable source raises
        :class:`BackendUnavailable`."""
        raise CapabilityMissing(f"the {self.name} metrics source does not run custom queries")

    def render(self, expr: str, track: Track, seconds: float | None) -> str:
        """``expr`` with the placeholders :meth:`query` would fill for ``track``, as the gate
        view shows it; ``expr`` unchanged for sources without placeholders. Raises
        :class:`BackendError` when it cannot be filled."""
        return expr

    def shown_query(self, metric: str, track: Track, seconds: float) -> str:
        """The query behind built-in ``metric`` for ``track`` over ``seconds``, as the gate
        view shows it on demand; "" for sources that compute it themselves."""
        return ""

    async def close(self) -> None:  # noqa: B027
        pass


class PlatformRollouts(abc.ABC):
    """The role of a backend whose platform walks the steps itself (``DRIVES_STEPS``: Argo
    Rollouts, Flagger). The cockpit mirrors what :meth:`rollout_status` reports and forwards
    commands through :meth:`send`; it never calls such a backend's traffic methods.

    Commands and their arguments: ``set-image`` (version), ``promote``, ``promote-full``,
    ``pause`` (by), ``resume``, ``abort``, ``retry``, ``set-weight`` (weight; only with
    ``SET_WEIGHT``), ``undo`` (revision)."""

    @abc.abstractmethod
    async def use_strategy(self, steps: Sequence[Step], checks: Sequence[Check]) -> None:
        """The plan's canary steps and the checks they name. An adapter writes them to the
        platform's rollout spec, or raises :class:`BackendConfigError` when they differ."""

    @abc.abstractmethod
    async def rollout_status(self) -> PlatformRollout: ...

    @abc.abstractmethod
    async def send(self, command: str, **args: object) -> str:
        """Ask the platform to do ``command``; returns its answer. Raises
        :class:`CommandRefused` when the platform says no (nothing changed), another
        :class:`BackendError` when the answer is unknown."""

    async def watch(self, generation: int, timeout: float) -> None:
        """Return once the rollout's generation passed ``generation`` or after ``timeout``
        seconds. Platforms without a watch API keep this: the mirror then polls."""
        await asyncio.sleep(timeout)
