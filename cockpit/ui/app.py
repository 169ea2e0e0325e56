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
from cockpit.ui.screens.palette import CockpitPalette
from cockpit.ui.themes import DEFAULT_THEME, THEME_VARIABLES, load_themes
from cockpit.ui.widgets.header import CockpitHeader

if TYPE_CHECKING:  # imported when first needed: the first frame does not wait for the engine
    from cockpit.engine.session import InFlight, Session
    from cockpit.ui.screens.main import MainScreen

log = logging.getLogger(__name__)

# The main screen's actions that act on the focused environment: the palette names it.
ENV_ACTIONS = frozenset(
    {"start", "weight", "promote", "pause", "promote_full", "abort", "retry", "rollback", "migrations",
     "migrate_next", "migrate_undo"}
)

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
        self._quit_asked = False  # the quit confirmation is on screen
        self._quit_in_flight: list[InFlight] = []  # what was under way when the person quit
        self.exit_summary: list[str] = []  # printed on the terminal once the app has left (run_app)
        self.bells_rung = 0  # alerts that rang the bell ([ui] bell = true)
        self._alerts_seen = 0  # the newest alert id already announced

    # ------------------------------------------------------------------ lifecycle

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLES)

    @property
    def has_session(self) -> bool:
        """False while a loader still reads the plan (the first frame comes before it)."""
        return "session" in self.__dict__

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

    # ------------------------------------------------------------------ quitting (screens/quit.py)

    def in_flight(self) -> list[InFlight]:
        """What quitting would cut short: rollouts under way, and environments where an
        action was sent and has not answered yet (a deploy that hangs is in flight too)."""
        if not self.has_session:  # still loading the plan: nothing can be under way
            return []
        from cockpit.engine.session import InFlight

        found = {item.env: item for item in self.session.in_flight()}
        for env in self.intents.pending:
            if env not in found:
                view = self.session.view(env)
                r = view.rollout
                found[env] = InFlight(
                    env,
                    view.protected,
                    r.phase.value,
                    r.activity.value,
                    r.target_version,
                    r.stable_version,
                    r.weight,
                    self.session.owns_workloads(env),
                )
        order = list(self.session.controllers)
        return sorted(found.values(), key=lambda item: order.index(item.env))

    async def action_quit(self) -> None:
        """``q``, ctrl+q and the palette's Quit all end here."""
        if self._quitting:  # a second q while stopping: leave now
            self._finish_summary(closed=False)
            self.exit()
            return
        if self._quit_asked:  # the confirmation is already asking
            return
        in_flight = self.in_flight()
        if not in_flight:
            self._begin_quit([])
            return
        from cockpit.ui.screens.quit import QuitScreen

        def answered(quit_now: bool | None) -> None:
            self._quit_asked = False
            if quit_now:
                # What is in flight *now*: it may have moved while the question was open.
                self._begin_quit(self.in_flight())

        self._quit_asked = True
        self.push_screen(QuitScreen(in_flight, dict(self.intents.pending)), answered)

    def _begin_quit(self, in_flight: list[InFlight]) -> None:
        if not self.has_session:  # ctrl+q while the plan loads: nothing to stop yet
            self.exit()
            return
        self._quitting = True
        self._quit_in_flight = in_flight
        self.session.record_quit(in_flight)
        self._finish_summary(closed=False)  # in case the loop dies before closing ends
        self.notify(
            "stopping the environments… (q again to leave at once)", title="quit", timeout=CLOSE_TIMEOUT
        )
        # A worker, so keys (a second q) are still read while backends stop.
        self.run_worker(self._close_and_exit(), name="session-close", exit_on_error=False)

    def _finish_summary(self, closed: bool) -> None:
        if not self.has_session:
            return
        from cockpit.ui.screens.quit import exit_summary

        envs = list(self.session.controllers)
        owned = {env: self.session.owns_workloads(env) for env in envs}
        self.exit_summary = exit_summary(self._quit_in_flight, envs, owned, closed, self.clock())

    async def _close_and_exit(self) -> None:
        try:
            await asyncio.wait_for(self.session.close(), CLOSE_TIMEOUT)
            self.session_closed = True
        except TimeoutError:
            log.error("environments did not stop within %.0fs", CLOSE_TIMEOUT)
        except Exception:  # leaving must always work
            log.exception("closing the session failed")
        self._finish_summary(closed=self.session_closed)
        self.exit()

    # ------------------------------------------------------------------ alerts (widgets/alerts.py)

    def on_cockpit_header_alerts_changed(self, message: CockpitHeader.AlertsChanged) -> None:
        newest = max((a.id for a in message.alerts), default=0)
        if newest > self._alerts_seen:
            self._alerts_seen = newest
            if self.config.ui.bell:
                self.bells_rung += 1
                self.bell()
        self.refresh_bindings()  # the acknowledge key shows only while there is an alert

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "acknowledge_alert":
            return self.has_session and bool(self.session.alerts())  # False hides it from the footer when idle
        return True

    def action_acknowledge_alert(self) -> None:
        alert = self.session.acknowledge()
        if alert is None:
            self.notify("no alert to acknowledge", timeout=2)
            return
        left = len(self.session.alerts())
        self.notify(
            f"{alert.env}: {alert.what}" + (f" ({left} more)" if left else ""),
            title="alert acknowledged",
            timeout=3,
        )
        main = self.main_screen
        if main is not None:
            main.tick()  # the banner shows the next one at once

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

    def action_command_palette(self) -> None:
        # Ours: Enter acts on the current query's result, never on an older list (palette.py).
        if self.use_command_palette and not isinstance(self.screen, CockpitPalette):
            self.push_screen(CockpitPalette(id="--command-palette"))

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
        self.push_screen(
            ConfirmScreen(intent.env, intent.what, need_name=protected, command=intent.command), confirmed
        )

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
        """The palette lists the cockpit's actions only, each with its key and, for a
        release action, the environment it acts on. Textual's own entries are left out:
        "Theme" offers Textual's themes, which lack the cockpit's variables (stable,
        canary, ok/fail, phases) so columns would lose their meaning (``t`` cycles the
        cockpit's); "Quit" said "as soon as possible" (ours is the quit key's path, with
        its confirmation); "Keys" duplicates ``?`` with Textual's internal bindings;
        "Maximize" has nothing to maximize (nothing takes focus here); "Screenshot"
        writes where the cockpit was started from, or fails there (scripts/screenshots.py
        makes the real ones)."""
        main = self.main_screen
        if main is None:
            return
        for spec in ACTIONS:
            keys = display_keys(spec, self.keymap)
            target = f" · on {main.current}" if spec.method in ENV_ACTIONS and main.current else ""
            if spec.method in ENV_ACTIONS and main.current and self.session.view(main.current).protected:
                target += " (protected)"
            why = main.unavailable(spec.method)
            if why:  # listed, so it can be found, with the reason it cannot run here
                yield SystemCommand(
                    spec.help,
                    f"unavailable: {why} · key {keys}",
                    partial(main.explain_unavailable, spec.method),
                )
                continue
            # Through the screen's action, as the key does: release actions post
            # RequestAction and meet the same checks and confirmation as their keys.
            yield SystemCommand(
                spec.help, f"{spec.label} · key {keys}{target}", partial(main.run_action, spec.action)
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
        # The screen is gone: say on the terminal what was in flight and what became of it.
        with contextlib.suppress(OSError):  # a closed stdout must not turn the exit into a crash
            for line in app.exit_summary:
                print(line)
    if app.load_error is not None:
        raise app.load_error
    return app.return_code or 0
