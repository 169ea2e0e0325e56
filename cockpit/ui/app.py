"""The cockpit's Textual app.

The app renders ``session.views()`` and sends intents through the session; it never
touches an adapter. Screens ask for actions by posting :class:`RequestAction`; the app
checks, confirms and runs them and hears back through :class:`ActionStarted` and
:class:`ActionDone` (cockpit/ui/intents.py), so nothing below the app imports it. The session runs on the app's own asyncio loop and is started
by an *async* worker once the first frame is painted (a thread worker would fork
the local backend's children from a short-lived thread, and their
PR_SET_PDEATHSIG is tied to the forking thread), so the screen appears at once and
fills in as environments come up. Given a :class:`~cockpit.ui.loading.SessionLoader`
instead of a session, the app paints a preview first (cockpit/ui/screens/loading.py) and
only then reads the plan and opens the session: the first frame does not wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen

from cockpit.ui.config import UIConfig, load_config
from cockpit.ui.intents import ActionDone, ActionStarted, Intent, Intents, RequestAction, preflight
from cockpit.ui.keys import ACTIONS, display_keys
from cockpit.ui.loading import SessionLoader
from cockpit.ui.themes import DEFAULT_THEME, THEME_VARIABLES, load_themes

if TYPE_CHECKING:  # imported when first needed: the first frame does not wait for the engine
    from cockpit.engine.session import Session
    from cockpit.ui.screens.main import MainScreen

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 30.0  # seconds to wait for the environments to stop before leaving anyway


class CockpitApp(App[None]):
    # Absolute, so subclasses defined elsewhere (benchmarks, embedding) still find it.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "cockpit"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "quit", show=False, priority=True, id="quit_ctrl"),
    ]

    def __init__(
        self,
        session: Session | None = None,
        *,
        load_session: SessionLoader | None = None,
        theme_name: str | None = None,
        config: UIConfig | None = None,
        start_session: bool = True,
        clock: Callable[[], float] | None = None,
        theme_dirs: list[Path] | None = None,
        initial_rollout: tuple[str, str, str] | None = None,
    ) -> None:
        """``clock`` (unix seconds) feeds the header clock and countdowns: tests freeze
        it for deterministic snapshots. ``theme_dirs`` replaces the theme search path.
        ``initial_rollout`` (env, version, reason) starts a rollout as soon as the
        environments are up (``cockpit rollout`` without ``--headless``). ``load_session``
        instead of ``session``: the plan is read and the session opened after the first
        frame; if that fails the app exits and :attr:`load_error` holds why."""
        super().__init__()
        if (session is None) == (load_session is None):
            raise ValueError("CockpitApp needs a session or a session loader (one of them)")
        self.session: Session
        self.intents: Intents
        self._loader = load_session
        self.load_error: Exception | None = None
        if session is not None:
            self._adopt(session)
        self.clock = clock or time.time
        self.problems: list[str] = []
        if config is None:
            config, config_problems = load_config()
            self.problems += config_problems
        self.config = config
        self.keymap = dict(config.keys)
        themes, theme_problems = load_themes(theme_dirs)
        self.problems += [f"theme {p}" for p in theme_problems]
        for theme in themes.values():
            self.register_theme(theme)
        self.cockpit_themes = list(themes)
        wanted = theme_name or config.theme or DEFAULT_THEME
        if wanted not in themes:
            self.problems.append(
                f"theme {wanted!r} not found (known: {', '.join(themes)}); using {DEFAULT_THEME}"
            )
            wanted = DEFAULT_THEME
        self.theme = wanted
        self.start_session = start_session
        self.initial_rollout = initial_rollout
        self.session_started = False
        self.session_closed = False
        self._quitting = False

    # ------------------------------------------------------------------ lifecycle

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLES)

    def _adopt(self, session: Session) -> None:
        self.session = session
        self.intents = Intents(session, self.post_message)

    def get_default_screen(self) -> Screen:
        # The main screen *is* the default screen: pushing it over Textual's blank
        # default would make the first frame painted an empty one.
        if self._loader is not None:
            from cockpit.ui.screens.loading import LoadingScreen

            return LoadingScreen(self._loader.preview)
        from cockpit.ui.screens.main import MainScreen

        return MainScreen()

    def on_mount(self) -> None:
        if self.keymap:
            self.set_keymap(self.keymap)
        for problem in self.problems:  # each reported once, at start
            self.notify(problem, title="configuration", severity="error", timeout=12)
        if self.start_session or self._loader is not None:
            # After the first frame: the screen shows at once, environments fill in.
            self.call_after_refresh(self._start_session)

    def _start_session(self) -> None:
        self.run_worker(self._run_session_start(), name="session-start", exit_on_error=False)

    async def _load(self, loader: SessionLoader) -> bool:
        """Read the plan (a thread: pydantic is slow, the preview stays live), open the
        session (this loop) and put the main screen in the preview's place. On failure
        the app exits and :attr:`load_error` keeps the error for the command line."""
        started = time.perf_counter()
        try:
            plan = await asyncio.to_thread(loader.read_plan)
            session = loader.open_session(plan)
        except Exception as err:
            log.info("the plan or the session could not be opened: %s", err)
            self.load_error = err
            self.exit(return_code=1)
            return False
        self._adopt(session)
        self._loader = None
        took = (time.perf_counter() - started) * 1e3
        log.info("plan %s loaded and session open in %.0f ms", plan.service.name, took)
        while len(self.screen_stack) > 1:
            await self.pop_screen()  # a palette opened while loading goes first
        from cockpit.ui.screens.main import MainScreen

        # Pushed over the preview, not switched for it: Textual cannot switch away from its
        # default screen. The preview stays below, never shown again (nothing pops MainScreen).
        await self.push_screen(MainScreen())
        return True

    async def _run_session_start(self) -> None:
        if self._loader is not None and not await self._load(self._loader):
            return
        if not self.start_session:
            return
        try:
            # keep_trying: an environment down at start is retried with backoff and
            # its column says so, instead of staying dead until a restart.
            problems = await self.session.start(keep_trying=True)
        except Exception as err:  # the cockpit stays up to show what went wrong
            log.exception("session start failed")
            self.notify(str(err), title="cannot start the environments", severity="error", timeout=30)
            return
        self.session_started = True
        log.info("session started; %d environment(s) down at start", len(problems))
        # Everything long-lived exists now (widgets, controllers, buffers): move it out
        # of the collector's sight, so full collections no longer stall the loop for
        # ~100 ms while logs stream (DESIGN.md, "Performance technique").
        gc.freeze()
        for problem in problems:
            self.notify(
                str(problem.error), title=f"{problem.env}: backend down", severity="error", timeout=15
            )
        if self.initial_rollout is not None:
            env, version, reason = self.initial_rollout
            # Asked for on the command line, reason included: no modal, the engine's
            # rules (protected environments need a reason) still apply.
            from cockpit.engine.commands import StartRollout

            self._run(Intent(env, StartRollout(version), f"start a rollout of {version}"), reason)

    async def action_quit(self) -> None:
        if self._quitting:  # a second q while stopping: leave now
            self.exit()
            return
        self._quitting = True
        self.notify(
            "stopping the environments… (q again to leave at once)", title="quit", timeout=CLOSE_TIMEOUT
        )
        # A worker, so keys (a second q) are still read while backends stop.
        self.run_worker(self._close_and_exit(), name="session-close", exit_on_error=False)

    async def _close_and_exit(self) -> None:
        try:
            await asyncio.wait_for(self.session.close(), CLOSE_TIMEOUT)
            self.session_closed = True
        except TimeoutError:
            log.error("environments did not stop within %.0fs", CLOSE_TIMEOUT)
        except Exception:  # leaving must always work
            log.exception("closing the session failed")
        self.exit()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notifications carry engine and backend text (errors, versions, paths):
        never parse it as markup, whatever a caller (or ``Widget.notify``) asks."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # ------------------------------------------------------------------ intents (cockpit/ui/intents.py)

    def on_request_action(self, message: RequestAction) -> None:
        intent = message.intent
        refusal = preflight(self.session, intent)
        if refusal:
            self.notify(refusal, title=f"{intent.env}: {intent.action} refused", severity="warning")
            return
        if not self.session.needs_reason(intent.env):
            self._run(intent, "")
            return

        def confirmed(reason: str | None) -> None:
            if reason is not None:  # None: Escape or Cancel, nothing happens
                self._run(intent, reason)

        from cockpit.ui.screens.confirm import ConfirmScreen  # imported when first needed: faster start

        protected = self.session.view(intent.env).protected
        self.push_screen(ConfirmScreen(intent.env, intent.what, need_name=protected), confirmed)

    def _run(self, intent: Intent, reason: str) -> None:
        self.run_worker(
            self.intents.execute(intent, reason),
            name=f"intent-{intent.env}-{intent.action}",
            group=f"intent-{intent.env}",
            exit_on_error=False,
        )

    def on_action_started(self, message: ActionStarted) -> None:
        self._redraw(message.intent.env)

    def on_action_done(self, message: ActionDone) -> None:
        intent, result = message.intent, message.result
        self._redraw(intent.env)
        if result is None:
            error = message.error
            self.notify(f"{intent.what} failed: {error}", title=f"{intent.env}: error", severity="error")
            return
        title = f"{intent.env}: {intent.action}" + ("" if result.ok else " refused")
        self.notify(
            result.message or ("done" if result.ok else "refused"),
            title=title,
            severity="information" if result.ok else "warning",
        )

    def _redraw(self, env: str) -> None:
        screen = self.main_screen
        if screen is not None:
            screen.redraw(env)

    # ------------------------------------------------------------------ hooks for screens

    @property
    def main_screen(self) -> MainScreen | None:
        from cockpit.ui.screens.main import MainScreen  # not before the first frame

        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def cycle_theme(self) -> str:
        names = self.cockpit_themes
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=1.5)
        return self.theme

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        main = self.main_screen
        if main is None:
            return
        for spec in ACTIONS:
            if spec.id == "quit":
                continue  # Textual's own Quit command runs action_quit
            keys = display_keys(spec, self.keymap)
            why = main.unavailable(spec.method)
            if why:  # listed, so it can be found, with the reason it cannot run here
                yield SystemCommand(
                    spec.help,
                    f"unavailable: {why} · key {keys}",
                    partial(main.explain_unavailable, spec.method),
                )
                continue
            yield SystemCommand(
                spec.help, f"{spec.label} · key {keys}", partial(main.run_action, spec.action)
            )


def run_app(
    session: Session | SessionLoader,
    *,
    theme_name: str | None = None,
    config: UIConfig | None = None,
    initial_rollout: tuple[str, str, str] | None = None,
) -> int:
    """Run the cockpit full-screen until the engineer quits (for the CLI); returns the
    exit code (non-zero when the app ended on an error, so scripts can tell). Given a
    loader, an error reading the plan or opening the session is raised once the screen
    is gone, for the command line to report as it would without a screen."""
    if isinstance(session, SessionLoader):
        app = CockpitApp(
            load_session=session, theme_name=theme_name, config=config, initial_rollout=initial_rollout
        )
    else:
        app = CockpitApp(session, theme_name=theme_name, config=config, initial_rollout=initial_rollout)
    try:
        app.run()
    finally:
        if not app.session_closed and hasattr(app, "session"):
            # The loop is gone (crash, or q pressed twice): release the journal at least.
            # Owned workloads die with this process (PR_SET_PDEATHSIG).
            with contextlib.suppress(Exception):  # nothing more can be done on the way out
                app.session.journal.close()
    if app.load_error is not None:
        raise app.load_error
    return app.return_code or 0
