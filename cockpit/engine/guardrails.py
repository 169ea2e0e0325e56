"""The one place that decides whether a command may be tried at all, before the rollout's
own rules (the machine) decide whether it is legal now.

Rules, in the order they are checked:

* a freeze window forbids starting a rollout;
* a command whose capability the backend lacks is refused (never sent to fail there);
* the driver lock: only the person driving an environment changes it (pairing fills
  this in; alone, the lock is always granted);
* the plan's ``require_reason`` and a protected environment need a reason.

Both :meth:`Session.submit` and :meth:`Session.preview` ask here, so the screen greys
out and refuses exactly what the engine would. A preview has no reason yet
(``reason=None``): the reason rules are left to the confirmation that asks for one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from cockpit.adapters.base import Capability
from cockpit.engine.clock import SYSTEM_CLOCK, Clock
from cockpit.engine.commands import Command, SetWeight, StartRollout, capability
from cockpit.plan.models import Environment
from cockpit.plan.models import Guardrails as PlanGuardrails

# Why a blue-green plan takes no weight: said where a canary plan says the backend cannot.
SWITCH_ONLY = (
    "blue-green switches all traffic at once: there is no canary weight; "
    "promote (p) switches to the preview, abort (a) removes it"
)

# How a missing capability reads in a refusal: "the memory backend cannot <...>".
CANNOT = {
    Capability.SET_WEIGHT: "set a weight",
    Capability.ROLLBACK_TO_REVISION: "roll back to a chosen revision",
}


class DriverLock(Protocol):
    def refusal(self, env: str, user: str) -> str | None:
        """Why ``user`` may not drive ``env`` right now (someone else holds it), or ``None``."""
        ...


class AlwaysGranted:
    """One person at one cockpit: nobody else can hold the lock."""

    def refusal(self, env: str, user: str) -> str | None:
        return None


class Guardrails:
    def __init__(
        self, rules: PlanGuardrails, lock: DriverLock | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.rules = rules
        self.lock: DriverLock = lock or AlwaysGranted()
        self.clock = clock

    def frozen(self, env: str, now: dt.datetime | None = None) -> str | None:
        """The freeze window that forbids starting a rollout on ``env`` now, if any."""
        now = now or dt.datetime.fromtimestamp(self.clock.now(), dt.UTC)
        minute = now.hour * 60 + now.minute
        for window in self.rules.freeze:
            if window.environments and env not in window.environments:
                continue
            start = int(window.start[:2]) * 60 + int(window.start[3:])
            end = int(window.end[:2]) * 60 + int(window.end[3:])
            inside = start <= minute < end if start <= end else (minute >= start or minute < end)
            if inside:
                return f"{window.start}-{window.end} UTC"
        return None

    def needs_reason(self, env: Environment) -> bool:
        """Must a person give a reason for commands on ``env``? (The screen asks for one.)"""
        return env.protected or self.rules.require_reason

    def refusal(
        self,
        env: Environment,
        command: Command,
        *,
        reason: str | None,
        user: str,
        backend: str,
        capabilities: Iterable[Capability],
        switch_only: bool = False,
    ) -> str | None:
        """Why ``command`` on ``env`` is refused before the machine is even asked, or ``None``.
        ``reason=None`` is a preview: the reason rules are not checked yet. ``switch_only``:
        the plan is blue-green, so no weight between 0 and 100 is ever set."""
        if isinstance(command, StartRollout) and (window := self.frozen(env.name)):
            return f"{env.name} is frozen ({window}): no rollout may start"
        if switch_only and isinstance(command, SetWeight):
            return SWITCH_ONLY
        needed = capability(command)
        if needed is not None and needed not in frozenset(capabilities):
            return f"the {backend} backend cannot {CANNOT.get(needed, needed.value)}"
        if held := self.lock.refusal(env.name, user):
            return held
        if reason is None or reason.strip() or not self.needs_reason(env):
            return None
        if self.rules.require_reason:
            return "this plan requires a reason for every action"
        return f"{env.name} is protected: a reason is required"
