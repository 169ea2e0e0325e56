"""Alerts: what went wrong on its own and must not be missed, kept until a person says so.

A rollout aborted by analysis, by the health gate or by a crash loop, an environment
turned Degraded, an action that failed: each is a fact the engine already holds (the
state the drivers set, the journal's "failed" record). The screen's header only says
what runs *now*, so right after an abort it reads "no release in progress" - exactly
when the engineer most needs to know what happened. :class:`AlertLog` turns those facts
into alerts that stay until acknowledged, newest first.

Pure: no Textual, no I/O. The session feeds it every state change of every environment
(:meth:`AlertLog.observe`) and every failed command (:meth:`AlertLog.add`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cockpit.engine.state import Cause, Phase, RolloutState

# How an abort's cause reads after "aborted ...". A person's abort is no alert: they did it.
ABORTED_BY = {
    Cause.ANALYSIS_FAILED: "by analysis",
    Cause.SMOKE_FAILED: "by a smoke check",
    Cause.MIGRATION_FAILED: "by a failing expand step (nothing was deployed)",
    Cause.HEALTH_GATE: "by the health gate",
    Cause.CRASH_LOOP: "by a crash loop",
    Cause.BACKEND_FAILURE: "after a backend failure",
    Cause.TIMEOUT: "on a timeout",
    Cause.JOURNAL_FAILURE: "because the journal could not be written",
    Cause.INCONCLUSIVE_HEADLESS: "on an inconclusive analysis (no human to decide)",
    Cause.INTERNAL_ERROR: "by an internal error",
}
# Not alerts: a person aborted (they know), or the cockpit itself was stopped.
QUIET_CAUSES = frozenset({Cause.ABORTED_BY_USER, Cause.INTERRUPTED})


@dataclass(frozen=True)
class Alert:
    id: int  # grows by one per alert in this session
    env: str
    what: str  # "rollout of 1.2.0 aborted by analysis"
    cause: str  # the engine's own words: the state's reason, or the failure's detail
    ts: float  # unix seconds, when the engine saw it
    kind: str  # the typed cause ("analysis-failed"), "degraded" or "failed-action"


@dataclass(frozen=True)
class _Seen:
    """What was last observed of an environment, to raise an alert once per event."""

    phase: Phase
    cause: Cause | None
    epoch: int
    reason: str


def _alert_for(previous: _Seen | None, state: RolloutState) -> tuple[str, str] | None:
    """(what, kind) if ``state`` is news worth an alert after ``previous``, else None."""
    if state.phase is Phase.ABORTED:
        if state.cause is None or state.cause in QUIET_CAUSES:
            return None
        if previous is not None and previous.phase is Phase.ABORTED and previous.epoch == state.epoch:
            return None  # the same abort, seen again at the next poll
        version = state.target_version or "the canary"
        return f"rollout of {version} aborted {ABORTED_BY.get(state.cause, str(state.cause))}", str(
            state.cause
        )
    if state.phase is Phase.DEGRADED:
        if previous is not None and previous.phase is Phase.DEGRADED and previous.reason == state.reason:
            return None
        why = f" ({state.cause})" if state.cause else ""
        return f"Degraded{why}", "degraded"
    return None


class AlertLog:
    """The alerts of one session: raised from observed state, kept until acknowledged."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self._active: list[Alert] = []  # oldest first
        self.last_id = 0  # the id of the newest alert ever raised (0: none yet)
        self.version = 0  # grows at every raise and acknowledgement: cheap change detection

    def baseline(self, env: str, state: RolloutState) -> None:
        """Remember ``state`` as known without raising anything for it: an abort left from
        an earlier session is history (the journal has it), not news."""
        self._seen[env] = _Seen(state.phase, state.cause, state.epoch, state.reason)

    def observe(self, env: str, state: RolloutState, now: float) -> Alert | None:
        """Fold one observed state of ``env`` in; returns the alert it raised, if any."""
        found = _alert_for(self._seen.get(env), state)
        self.baseline(env, state)
        if found is None:
            return None
        what, kind = found
        return self.add(env, what, state.reason, now, kind)

    def add(self, env: str, what: str, cause: str, now: float, kind: str) -> Alert:
        self.last_id += 1
        alert = Alert(self.last_id, env, what, cause, now, kind)
        self._active.append(alert)
        self.version += 1
        return alert

    def active(self) -> list[Alert]:
        """Alerts not yet acknowledged, newest first."""
        return self._active[::-1]

    def acknowledge(self, alert_id: int | None = None) -> Alert | None:
        """Acknowledge ``alert_id`` (default: the newest); returns it, or None if no such alert."""
        if not self._active:
            return None
        target = (
            self._active[-1]
            if alert_id is None
            else next((a for a in self._active if a.id == alert_id), None)
        )
        if target is None:
            return None
        self._active.remove(target)
        self.version += 1
        return target
