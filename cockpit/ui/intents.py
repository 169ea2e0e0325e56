"""User intents: check, confirm, send to the session, report - as messages.

Every action key ends here. The flow is the same for all of them:

1. *request* - a screen posts :class:`RequestAction`; it bubbles to the app, which
   owns the modal stack and the workers.
2. *preflight* - ask the engine's rules whether the action would be refused right
   now, so nobody types "production" and a reason only to be told "nothing is
   paused". A refusal here is journaled by the session like any other. The engine
   stays the authority: it decides again when asked for real.
3. *confirm* - protected environments (or a plan requiring reasons) open the typed
   confirmation; Escape cancels with no effect.
4. *run* - :meth:`Intents.execute` awaits the session in an async worker on the app's
   loop, so keys and the other columns stay live while a backend call takes seconds.
   It posts :class:`ActionStarted` and :class:`ActionDone`; the app redraws the column
   and turns the :class:`ActionResult` into a notification (a refusal is a warning,
   never an exception).

This module knows the session and Textual's messages, never the app or a screen: the
app and the screens import it, so it must not import them back (tests/test_ui_imports.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from cockpit.engine.commands import Command
from cockpit.engine.views import ActionResult

if TYPE_CHECKING:  # not imported at run time: the app's first frame does not wait for the engine
    from cockpit.engine.session import Session

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


class RequestAction(Message):
    """A person asked for ``intent`` (a key, a click, the palette): check, confirm, run."""

    def __init__(self, intent: Intent) -> None:
        super().__init__()
        self.intent = intent


class ActionStarted(Message):
    """``intent`` was sent to the session; its environment shows as busy."""

    def __init__(self, intent: Intent) -> None:
        super().__init__()
        self.intent = intent


class ActionDone(Message):
    """The session answered ``intent`` (``result``), or the call itself failed (``error``:
    an engine bug, reported rather than taking the cockpit down mid-release)."""

    def __init__(self, intent: Intent, result: ActionResult | None, error: Exception | None = None) -> None:
        super().__init__()
        self.intent = intent
        self.result = result
        self.error = error


def preflight(session: Session, intent: Intent) -> str | None:
    """Why the engine refuses ``intent`` now, or ``None`` if it might accept it.

    A person asked (a key, the palette): a refusal is journaled by the session like one
    from the engine itself, so the journal holds every "no", not only those that got as
    far as a backend. The engine decides again when asked for real. An unexpected error
    means "ask the engine", never a false refusal.
    """
    try:
        return session.check(intent.env, intent.command)
    except Exception:  # the real call will say what is wrong
        log.debug("preflight of %s failed", intent, exc_info=True)
    return None


def would_refuse(session: Session, intent: Intent) -> str | None:
    """:func:`preflight` without the record: for greying out keys nobody pressed yet."""
    try:
        return session.preview(intent.env, intent.command)
    except Exception:
        log.debug("preview of %s failed", intent, exc_info=True)
    return None


class Intents:
    """The intents in flight, and the one way to run one.

    ``post`` delivers the progress messages (the app passes its ``post_message``): the
    runner reports, it never reaches into the app or a screen.
    """

    def __init__(self, session: Session, post: Callable[[Message], object]) -> None:
        self.session = session
        self.post = post
        self.pending: dict[str, str] = {}  # env -> what is being done there right now

    async def execute(self, intent: Intent, reason: str) -> None:
        self.pending[intent.env] = intent.what
        self.post(ActionStarted(intent))
        result: ActionResult | None = None
        error: Exception | None = None
        try:
            result = await self.session.submit(intent.env, intent.command, reason)
        except Exception as err:  # an engine bug must not take the cockpit down mid-release
            log.exception("intent %s failed", intent)
            error = err
        finally:
            if self.pending.get(intent.env) == intent.what:
                del self.pending[intent.env]
        self.post(ActionDone(intent, result, error))
