"""User intents: check, confirm, send to the session, report.

Every action key ends here. The flow is the same for all of them:

1. *preflight* - ask the engine's pure rules whether the action would be refused
   right now, so nobody types "production" and a reason only to be told "nothing is
   paused". The engine stays the authority: it decides again when asked for real.
2. *confirm* - protected environments (or a plan requiring reasons) open the typed
   confirmation; Escape cancels with no effect.
3. *run* - the session call is awaited in an async worker on the app's loop, so keys
   and the other columns stay live while a backend call takes seconds.
4. *report* - the :class:`ActionResult` becomes a notification; a refusal is a
   warning, never an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cockpit.engine.commands import Command
from cockpit.engine.session import Session

if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intent:
    env: str
    command: Command
    what: str  # for people: "promote past the pause", "set the canary weight to 30%"

    @property
    def action(self) -> str:
        """The journal's action name, also the notification's title."""
        return self.command.action


def preflight(session: Session, intent: Intent) -> str | None:
    """Why the engine would refuse ``intent`` now, or ``None`` if it might accept it.

    The engine's pure preview (no I/O, no state change); the engine decides again when
    asked for real. An unexpected error means "ask the engine", never a false refusal.
    """
    try:
        return session.preview(intent.env, intent.command)
    except Exception:  # the real call will say what is wrong
        log.debug("preflight of %s failed", intent, exc_info=True)
    return None


class Intents:
    def __init__(self, app: CockpitApp) -> None:
        self.app = app
        self.pending: dict[str, str] = {}  # env -> what is being done there right now

    @property
    def session(self) -> Session:
        return self.app.session

    def request(self, intent: Intent) -> None:
        refusal = preflight(self.session, intent)
        if refusal:
            self.app.notify(refusal, title=f"{intent.env}: {intent.action} refused", severity="warning")
            return
        view = self.session.view(intent.env)
        need_reason = self.session.needs_reason(intent.env)
        if not need_reason:
            self.run(intent, "")
            return

        def confirmed(reason: str | None) -> None:
            if reason is not None:  # None: Escape or Cancel, nothing happens
                self.run(intent, reason)

        from cockpit.ui.screens.confirm import ConfirmScreen  # imported when first needed: faster start

        self.app.push_screen(ConfirmScreen(intent.env, intent.what, need_name=view.protected), confirmed)

    def run(self, intent: Intent, reason: str) -> None:
        self.app.run_worker(
            self._execute(intent, reason),
            name=f"intent-{intent.env}-{intent.action}",
            group=f"intent-{intent.env}",
            exit_on_error=False,
        )

    async def _execute(self, intent: Intent, reason: str) -> None:
        self.pending[intent.env] = intent.what
        self.app.intent_changed(intent.env)
        try:
            result = await self.session.submit(intent.env, intent.command, reason)
        except Exception as err:  # an engine bug must not take the cockpit down mid-release
            log.exception("intent %s failed", intent)
            self.app.notify(f"{intent.what} failed: {err}", title=f"{intent.env}: error", severity="error")
            return
        finally:
            if self.pending.get(intent.env) == intent.what:
                del self.pending[intent.env]
            self.app.intent_changed(intent.env)
        title = f"{intent.env}: {intent.action}" + ("" if result.ok else " refused")
        self.app.notify(
            result.message or ("done" if result.ok else "refused"),
            title=title,
            severity="information" if result.ok else "warning",
        )
