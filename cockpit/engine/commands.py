"""What a person (or headless mode) can ask of an environment, as typed values.

Every command names its journal action and the backend capability it needs, in one
place; the UI, the session, the guardrails and the drivers all take these values,
so an action is never spelled as a string in more than this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cockpit.adapters.base import Capability
from cockpit.engine.state import Cause


@dataclass(frozen=True, slots=True)
class StartRollout:
    version: str
    action: ClassVar[str] = "rollout"


@dataclass(frozen=True, slots=True)
class Promote:
    """Move past the current pause (or an inconclusive analysis)."""

    action: ClassVar[str] = "promote"


@dataclass(frozen=True, slots=True)
class PromoteFull:
    action: ClassVar[str] = "promote-full"


@dataclass(frozen=True, slots=True)
class Pause:
    """Hold a progressing rollout where it is (a timed pause or an analysis stops)."""

    action: ClassVar[str] = "pause"


@dataclass(frozen=True, slots=True)
class Resume:
    """Go on after a :class:`Pause`: the held step runs again from its start."""

    action: ClassVar[str] = "resume"


@dataclass(frozen=True, slots=True)
class Abort:
    """All traffic to stable, canary removed. ``cause`` says who decided: a person by
    default, headless mode passes its own (timeout, inconclusive analysis...)."""

    cause: Cause = Cause.ABORTED_BY_USER
    action: ClassVar[str] = "abort"


@dataclass(frozen=True, slots=True)
class Retry:
    action: ClassVar[str] = "retry"


@dataclass(frozen=True, slots=True)
class SetWeight:
    weight: int
    action: ClassVar[str] = "set-weight"


@dataclass(frozen=True, slots=True)
class Rollback:
    """Run a retained revision again; ``None``: the one before the current stable."""

    revision: int | None = None
    action: ClassVar[str] = "rollback"


@dataclass(frozen=True, slots=True)
class RunMigration:
    """Apply the next pending [[migrations]] step here (the migrations screen's "run
    next"); ``step`` names the one the person saw, so a list that moved meanwhile refuses.
    ``phase`` (``cockpit migrate --phase``): the next pending step of that phase only."""

    step: str | None = None
    phase: str | None = None
    action: ClassVar[str] = "migrate"


@dataclass(frozen=True, slots=True)
class RollbackMigration:
    """Run the down action of the last applied step here, while it is reversible."""

    step: str | None = None
    action: ClassVar[str] = "migrate-down"


Command = (
    StartRollout
    | Promote
    | PromoteFull
    | Pause
    | Resume
    | Abort
    | Retry
    | SetWeight
    | Rollback
    | RunMigration
    | RollbackMigration
)


def capability(command: Command) -> Capability | None:
    """The backend capability ``command`` needs, if any."""
    match command:
        case SetWeight():
            return Capability.SET_WEIGHT
        case Rollback(revision=int()):
            # Rolling back to the previous revision is a redeploy every backend can do;
            # choosing any retained revision is not.
            return Capability.ROLLBACK_TO_REVISION
    return None
