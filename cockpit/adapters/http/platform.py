"""The ``http`` backend with ``driver = "platform"``: the platform walks the canary steps
and the cockpit mirrors it (PlatformRollouts, ``DRIVES_STEPS``).

The rollout is read from the status answer through the plan's ``[rollout]`` paths (phase,
step, version, message) next to the tracks, weight and revisions. A platform that keeps
no generation counter is given one here: it grows whenever what is observed changes, so
the mirror can tell a new observation from a stale one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from cockpit.adapters.base import (
    AdapterContext,
    BackendConfigError,
    Capability,
    CommandRefused,
    PlatformRollouts,
)
from cockpit.adapters.http import mapping
from cockpit.adapters.http.backend import HttpBackend
from cockpit.adapters.http.mapping import find
from cockpit.adapters.http.options import HttpOptions, RevisionsMap, RolloutMap
from cockpit.adapters.http.transport import CredentialRejected, HttpStatusError
from cockpit.adapters.rollouts import Operation, PauseReason, PlatformRevision, PlatformRollout, RolloutPhase
from cockpit.plan.models import Check, Step

log = logging.getLogger(__name__)

PHASES = {
    "Healthy": RolloutPhase.HEALTHY,
    "Progressing": RolloutPhase.PROGRESSING,
    "Paused": RolloutPhase.PAUSED,
    "Degraded": RolloutPhase.DEGRADED,
    "Aborted": RolloutPhase.DEGRADED,  # Argo's way: an aborted rollout is Degraded with aborted set
}


def step_spec(step: Step) -> dict[str, object]:
    """One plan step as the platform's rollout body takes it (Argo's spelling)."""
    if step.set_weight is not None:
        return {"setWeight": step.set_weight}
    if step.pause is not None:
        return {"pause": {} if step.pause.duration is None else {"duration": step.pause.duration}}
    raise BackendConfigError(
        "the http platform walks the steps itself and runs no analysis: remove the analysis step"
        f" ({step.describe()}) or use driver = \"cockpit\""
    )


class HttpPlatformBackend(HttpBackend, PlatformRollouts):
    capabilities: ClassVar[frozenset[Capability]] = HttpBackend.capabilities | {Capability.DRIVES_STEPS}

    def __init__(self, ctx: AdapterContext, options: HttpOptions, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        super().__init__(ctx, options, sleep)
        self.steps: tuple[Step, ...] = ()
        self.generation = 0
        self._seen: tuple[object, ...] | None = None
        self._first_seen: dict[tuple[int, str], float] = {}
        self._revisions: tuple[PlatformRevision, ...] = ()
        self._paused_by: str | None = None  # who sent the pause this cockpit forwarded

    @property
    def rollout_map(self) -> RolloutMap:
        assert self.options.rollout is not None  # the options refuse the platform driver without it
        return self.options.rollout

    @property
    def revisions_map(self) -> RevisionsMap:
        assert self.options.revisions is not None
        return self.options.revisions

    async def use_strategy(self, steps: Sequence[Step], checks: Sequence[Check]) -> None:
        for step in steps:
            step_spec(step)  # refuses what the platform cannot walk, before anything is sent
        self.steps = tuple(steps)

    # ------------------------------------------------------------------ observing

    async def rollout_status(self) -> PlatformRollout:
        answer = await self.call("status")
        data = answer.data
        status = mapping.backend_status(data, self.options.status, self.options.url)
        m = self.rollout_map
        word = mapping.text(data, m.phase, "the rollout phase")
        step = mapping.integer(data, m.step, "the rollout step") or 0
        target = mapping.text(data, m.version, "the rollout version")
        message = mapping.text(data, m.message, "the rollout message") or ""
        meaning = "Healthy" if word is None else m.phases.get(word)
        if meaning is None:
            raise mapping.MappingError(
                f"the rollout phase ({m.phase}) is {word!r}, which the plan's rollout.phases does not list"
                f" (listed: {', '.join(m.phases)})"
            )
        phase, aborted = PHASES[meaning], meaning == "Aborted"
        if phase is not RolloutPhase.PAUSED:
            self._paused_by = None
        pause, paused_by, paused_until = None, None, None
        if phase is RolloutPhase.PAUSED:
            pause, paused_by = self._pause_reason(data)
            until = find(data, m.paused_until)
            paused_until = float(until) if isinstance(until, int | float) and not isinstance(until, bool) else None
        operation = Operation.NONE
        if phase is RolloutPhase.PROGRESSING and (status.canary is None or not status.canary.healthy):
            operation = Operation.DEPLOYING
        if word is None:
            step = len(self.steps)
            message = message or (f"stable {status.stable.version} serves all traffic" if status.stable else "")
        failure = ""
        if phase is RolloutPhase.DEGRADED and not aborted:
            failure = message or "the platform reports the rollout degraded"
        revisions = self._revisions_of(data)
        stable = status.stable.version if status.stable else ""
        observed = (word, step, target, message, stable, status.canary, status.weight, revisions, pause, paused_by)
        if observed != self._seen:
            self._seen = observed
            self.generation += 1
        return PlatformRollout(
            generation=self.generation,
            phase=phase,
            stable_version=stable,
            steps=self._steps_of(data),
            message=message,
            target_version=target,
            canary_version=status.canary.version if status.canary else None,
            weight=status.weight,
            step_index=step,
            operation=operation,
            pause=pause,
            paused_by=paused_by,
            paused_until=paused_until,
            aborted=aborted,
            failure=failure,
            revisions=revisions,
        )

    def _steps_of(self, data: object) -> tuple[str, ...]:
        described = mapping.find(data, self.rollout_map.steps)
        if isinstance(described, list) and described and all(isinstance(d, str) for d in described):
            return tuple(described)
        return tuple(s.describe() for s in self.steps)

    def _pause_reason(self, data: object) -> tuple[PauseReason, str | None]:
        """Paused by hand or by a step: the platform's word if the plan maps it, else
        whether this cockpit sent the pause."""
        m = self.rollout_map
        if m.pause is not None:
            word = find(data, m.pause)
            by_hand = word in m.user_pauses
        else:
            by_hand = self._paused_by is not None
        if not by_hand:
            return PauseReason.STEP, None
        who = mapping.text(data, m.paused_by, "who paused the rollout") if m.paused_by else None
        return PauseReason.USER, who or self._paused_by or "someone"

    def _revisions_of(self, data: object) -> tuple[PlatformRevision, ...]:
        now = time.time()
        out = []
        for number, version in mapping.revision_list(data, self.revisions_map):
            # The platform gives no times: a revision is dated when the cockpit first saw it.
            ts = self._first_seen.setdefault((number, version), now)
            out.append(PlatformRevision(number, version, ts))
        self._revisions = tuple(out)
        return self._revisions

    # ------------------------------------------------------------------ commands

    async def send(self, command: str, **args: object) -> str:
        request = self.options.commands.get(command)
        if request is None:
            raise CommandRefused(f"the plan maps no request for the {command!r} command of this platform")
        values = self.values()
        match command:
            case "set-image":
                values["version"] = args["version"]
                values["steps"] = [step_spec(s) for s in self.steps]
            case "pause":
                values["by"] = args.get("by") or "someone"
            case "set-weight":
                values["weight"] = args["weight"]
            case "undo":
                revision = args.get("revision")
                found = [r for r in self._revisions if r.number == revision]
                if not found:
                    raise CommandRefused(f"revision {revision} is not among those the platform keeps")
                values["revision"], values["version"] = revision, found[0].version
        try:
            answer = await self.transport.call(command, request, values)
        except CredentialRejected:
            raise
        except HttpStatusError as err:
            if 400 <= err.status < 500:
                raise CommandRefused(err.error or err.body or f"{err.method} {err.path} answered {err.status}") from None
            raise
        if command == "pause":
            self._paused_by = str(args.get("by") or "someone")
        elif command in ("resume", "promote", "abort", "set-image", "retry", "promote-full"):
            self._paused_by = None
        return f"{command}: {request.method} {self.transport.target(request, values)} answered {answer.status}"
