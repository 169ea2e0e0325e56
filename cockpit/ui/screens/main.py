"""The main screen: every environment side by side, the log pane, the keys.

One timer (``refresh_hz``, 10 Hz by default) drives everything live: it re-renders a
column when its state changed (metrics-only changes wait for the once-a-second
tick), updates the header, and flushes the log pane in one batch per view. The
engine's change listener is deliberately not used: it fires on every poll of every
environment, and a timer bounds the repaint rate whatever the backends do.

Keys act on the *current* environment, shown by its column's title bar. Nothing on
this screen takes focus (a focus change rebuilds the footer and restyles whole
columns), so Left/Right/Tab stay instant while logs stream.

A key whose command needs a capability the current environment's backend lacks is
disabled (:meth:`MainScreen.check_action` returns ``None``: Textual greys it in the
footer and does not run it); pressing it says why, without a modal. The engine's
guardrails refuse such a command anyway: the screen only says it earlier.

Actions leave this screen as :class:`RequestAction` messages; the app runs them.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar, cast

from textual import events
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Container, Horizontal
from textual.content import Content
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import TabbedContent, TabPane

from cockpit.engine.commands import (
    Abort,
    Pause,
    Promote,
    PromoteFull,
    Resume,
    Retry,
    Rollback,
    SetWeight,
    StartRollout,
    capability,
)
from cockpit.engine.views import EnvView
from cockpit.ui import keys, render
from cockpit.ui.host import CockpitHost
from cockpit.ui.intents import Intent, RequestAction, preflight, would_refuse
from cockpit.ui.widgets.env_column import EnvColumn
from cockpit.ui.widgets.header import CockpitHeader
from cockpit.ui.widgets.key_footer import KeyFooter
from cockpit.ui.widgets.log_pane import LogPane
from cockpit.ui.widgets.weight_bar import WeightBar

log = logging.getLogger(__name__)

SHORT_SCREEN = 32  # rows: below this the log pane shrinks so the cards fit
SHORT_LOG_SHARE = 0.25
MIN_LOG_ROWS = 4


class EnvArea(Container):
    """The environments, side by side or - when each would get too narrow to show
    its state without truncation - as tabs."""

    DEFAULT_CSS = """
    EnvArea { height: 1fr; min-height: 8; }
    EnvArea #env-row { height: 100%; }
    EnvArea #env-row > EnvColumn { height: 100%; }
    EnvArea TabbedContent { height: 1fr; }
    EnvArea TabPane { padding: 0; height: 1fr; }
    """

    tabs: reactive[bool] = reactive(False)

    def __init__(self, views: list[EnvView], limits: dict[str, render.Limit], rows: int) -> None:
        super().__init__(id="envs")
        self.views = views
        self.limits = limits
        self.rows = rows

    def _column(self, view: EnvView) -> EnvColumn:
        return EnvColumn(view.name, view.protected, self.limits, self.rows)

    def compose(self) -> ComposeResult:
        if self.tabs:
            with TabbedContent(id="env-tabs"):
                for view in self.views:
                    with TabPane(tab_label(view), id=f"tab-{view.name}"):
                        yield self._column(view)
        else:
            with Horizontal(id="env-row"):
                for view in self.views:
                    yield self._column(view)

    @property
    def columns(self) -> dict[str, EnvColumn]:
        return {c.env: c for c in self.query(EnvColumn)}

    def show_phases(self, views: list[EnvView]) -> None:
        """Each tab carries its environment's phase: an abort in a tab not shown must
        still be seen. Only a changed label is set (it relayouts the tab row)."""
        self.views = views
        for tabs in self.query(TabbedContent):
            for view in views:
                label = tab_label(view)
                tab = tabs.get_tab(f"tab-{view.name}")
                if tab.label != label:
                    tab.label = label


def tab_label(view: EnvView) -> Content:
    """``✗ production``: the phase glyph in its colour, then the name (see PHASE_GLYPH
    for why these glyphs). A backend that is down shows ✗ on the name too, loudly."""
    phase = view.rollout.phase
    if view.backend_error is not None:
        return Content.assemble(("✗ ", "$fail bold"), (f"{view.name} down", "$fail"))
    return Content.assemble((f"{render.PHASE_GLYPH[phase]} ", render.PHASE_STYLE[phase]), view.name)


class MainScreen(Screen[None]):
    AUTO_FOCUS = None  # keys belong to the screen's bindings; nothing needs focus here
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings()

    def __init__(self) -> None:
        super().__init__(id="main")
        self._columns: dict[str, EnvColumn] = {}
        self._second = -1
        self._pending_redraw: set[str] = set()
        self._relayout_pending = False
        self._tick_failed = False
        self._last_slow = 0.0
        self.current = ""  # the environment keys act on; set in compose
        self._disabled: frozenset[str] = frozenset()  # actions the current env's backend cannot run
        self._log_height: int | str = ""

    @property
    def cockpit(self) -> CockpitHost:
        return cast(CockpitHost, self.app)

    def compose(self) -> ComposeResult:
        app = self.cockpit
        session = app.session
        views = session.views()
        names = [v.name for v in views]
        self.current = names[0]
        yield CockpitHeader(session.plan.service.name, session.plan.service.description, session.user)
        area = EnvArea(views, render.live_limits(session.plan), app.config.sparkline_rows)
        area.set_reactive(EnvArea.tabs, self._narrow(app.size.width, len(views)))  # no recompose at start
        yield area
        yield LogPane(session.logs, names, app.config.log_mode, self.current, id="logs")
        # The footer (a widget per key) is mounted after the first frame: ~40 ms
        # sooner on screen at start, and it is the least urgent thing to read.

    def on_mount(self) -> None:
        self._size_log_pane(self.size.height)
        self._layout_for(self.size.width)
        self._columns = self.query_one(EnvArea).columns
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self.select_env(self.current)
        self.tick()
        self.set_interval(1.0 / self.cockpit.config.refresh_hz, self.tick, name="refresh")
        self.call_after_refresh(self._mount_footer)

    async def _mount_footer(self) -> None:
        await self.mount(KeyFooter())
        self.refresh_bindings()  # the footer draws its keys when told the bindings changed

    # ------------------------------------------------------------------ layout

    def _narrow(self, width: int, envs: int) -> bool:
        return envs > 1 and width // envs < self.cockpit.config.min_column_width

    def _layout_for(self, width: int) -> None:
        area = self.query_one(EnvArea)
        tabs = self._narrow(width, len(area.views))
        if tabs != area.tabs and not self._relayout_pending:
            self._relayout_pending = True
            self.call_later(self._relayout)

    async def _relayout(self) -> None:
        """Switch between columns and tabs; the columns are rebuilt from the views."""
        area = self.query_one(EnvArea)
        self._columns = {}  # the tick skips columns while they are being replaced
        try:
            area.tabs = self._narrow(self.size.width, len(area.views))
            await area.recompose()
        finally:
            self._relayout_pending = False
        self._columns = area.columns
        self.select_env(self.current)
        self.tick(force=True)
        if self._narrow(self.size.width, len(area.views)) != area.tabs:
            self._layout_for(self.size.width)  # resized again meanwhile

    def on_resize(self, event: events.Resize) -> None:
        self._size_log_pane(event.size.height)
        self._layout_for(event.size.width)

    def _size_log_pane(self, height: int) -> None:
        """The log pane's share of the height; on a short terminal it gives up rows so
        a card can show its phase and analysis whole (at 24 rows, 40 % left a card 9)."""
        share = self.cockpit.config.log_height
        wanted: int | str = f"{share}%"
        if 0 < height < SHORT_SCREEN:
            wanted = max(MIN_LOG_ROWS, min(round(height * share / 100), round(height * SHORT_LOG_SHARE)))
        if wanted != self._log_height:
            self._log_height = wanted
            self.query_one(LogPane).styles.height = wanted

    def _theme_changed(self, _theme: object) -> None:
        self.query_one(LogPane).theme_changed()

    # ------------------------------------------------------------------ refresh

    def tick(self, force: bool = False) -> None:
        try:
            self._tick(force)
        except Exception:  # a rendering bug must not take the cockpit down mid-release
            log.exception("screen refresh failed")
            if not self._tick_failed:
                self._tick_failed = True
                self.notify("a screen refresh failed; details are in the log", severity="error")

    def _tick(self, force: bool) -> None:
        """Refresh what changed.

        A change of state (phase, weight, analysis, health...) is drawn at once. A
        change of metrics only (new sparkline samples) waits for the once-a-second
        *slow* tick, shared with the clock and the countdowns: Textual repaints the
        bounding box of everything dirty in a frame, so a column update in the same
        frame as the log panes costs a whole-screen repaint. Batching them keeps
        that to once a second instead of at every poll of every environment.
        """
        app = self.cockpit
        now = app.clock()
        mono = time.monotonic()
        second = int(now)
        # The clock's second changed; or a second passed (a frozen test clock).
        slow = second != self._second or mono - self._last_slow >= 1.0
        if slow:
            self._second, self._last_slow = second, mono
        views = app.session.views()
        pending = app.intents.pending
        for view in views:
            column = self._columns.get(view.name)
            if column is None or (
                view.seq == column.shown_seq and not force and view.name not in self._pending_redraw
            ):
                if column is not None and slow and column.needs_tick(view):
                    column.show(view, now, pending.get(view.name))
                continue
            if (
                force
                or view.name in self._pending_redraw
                or column.state_changed(view, pending.get(view.name))
                or slow
            ):
                column.show(view, now, pending.get(view.name))
        self._pending_redraw.clear()
        area = self.query_one(EnvArea)
        if area.tabs:
            area.show_phases(views)
        self.query_one(CockpitHeader).show(app.session.release_in_progress(), now)
        self.query_one(LogPane).flush()

    def redraw(self, env: str) -> None:
        self._pending_redraw.add(env)
        self.tick()

    # ------------------------------------------------------------------ environments

    @property
    def env_names(self) -> list[str]:
        return [v.name for v in self.query_one(EnvArea).views]

    def select_env(self, env: str) -> None:
        self.current = env
        for name, column in self._columns.items():
            column.set_current(name == env)
        area = self.query_one(EnvArea)
        for tabs in area.query(TabbedContent):  # none while (re)composing
            if tabs.active != f"tab-{env}":
                tabs.active = f"tab-{env}"
        self.query_one(LogPane).set_env(env)
        if self.focused is not None and self.app.screen is self:
            self.set_focus(None)  # keys go to the screen's bindings, whatever was clicked before
        disabled = frozenset(a for a in keys.SENDS if self.unavailable(a))
        if disabled != self._disabled:
            # Only then: rebuilding the footer on every Left/Right would cost a frame.
            self._disabled = disabled
            self.refresh_bindings()

    def on_env_column_selected(self, event: EnvColumn.Selected) -> None:
        if event.env != self.current:
            self.select_env(event.env)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane_id = event.pane.id or ""
        env = pane_id.removeprefix("tab-")
        if env in self.env_names and env != self.current:
            self.select_env(env)

    def _move(self, step: int) -> None:
        names = self.env_names
        self.select_env(names[(names.index(self.current) + step) % len(names)])

    def action_next_env(self) -> None:
        self._move(1)

    def action_prev_env(self) -> None:
        self._move(-1)

    def view(self) -> EnvView:
        return self.cockpit.session.view(self.current)

    # ------------------------------------------------------------------ capabilities

    def unavailable(self, action: str, pressed: bool = False) -> str | None:
        """Why ``action`` (a method name, "weight") cannot run on the current environment's
        backend at all, or ``None``. The words are the engine's guardrail refusal; journaled
        as a refusal only when a person ``pressed`` the key."""
        if action not in keys.SENDS or not self.current:
            return None
        view = self.view()
        sample = keys.missing_capability(action, view.capabilities)
        if sample is None:
            return None
        check = preflight if pressed else would_refuse
        return check(self.cockpit.session, Intent(view.name, sample, action)) or "not supported here"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None, not False: the key stays listed, greyed out, so people see it exists.
        return None if self.unavailable(action) else True

    def explain_unavailable(self, action: str) -> None:
        why = self.unavailable(action, pressed=True)
        if why:
            self.notify(why, title=f"{self.current}: unavailable", severity="warning")

    def on_key(self, event: events.Key) -> None:
        """A disabled key is not run by Textual; say why instead of doing nothing."""
        if not self._disabled:  # the common case costs one check per key
            return
        active = self.active_bindings.get(event.key)
        if active is not None and not active.enabled and active.node is self:
            self.explain_unavailable(active.binding.action.split("(")[0])  # "weight(10)" -> "weight"

    # ------------------------------------------------------------------ intents

    def _request(self, intent: Intent) -> None:
        self.post_message(RequestAction(intent))

    def action_start(self) -> None:
        view = self.view()
        if not view.connected:
            problem = f"{view.name} is not connected: {view.backend_error or 'the backend is starting'}"
            self.notify(problem, title=f"{view.name}: rollout refused", severity="warning")
            return
        if not view.versions:
            self.notify(f"{view.name}: no versions known yet (is the backend up?)", severity="warning")
            return
        env = view.name

        def picked(version: str | None) -> None:
            if version:
                self._start_summary(env, version)

        from cockpit.ui.screens.pickers import VersionPicker  # imported when first needed: faster start

        self.app.push_screen(VersionPicker(env, view.versions, view.rollout.stable_version), picked)

    def _start_summary(self, env: str, version: str) -> None:
        """Show what the rollout will do before it starts. Where a reason is needed, the
        typed confirmation shows the summary itself (one modal); elsewhere one Enter here."""
        intent = Intent(env, StartRollout(version), f"start a rollout of {version}")
        refusal = preflight(self.cockpit.session, intent)
        if refusal:  # said now, not after a summary that leads nowhere
            self.notify(refusal, title=f"{env}: rollout refused", severity="warning")
            return
        if self.cockpit.session.needs_reason(env):
            self._request(intent)
            return

        def confirmed(start: bool | None) -> None:
            if start:
                self._request(intent)

        from cockpit.ui.screens.summary import StartSummary

        self.app.push_screen(StartSummary(self.cockpit.session.view(env), version), confirmed)

    def action_weight(self, delta: int) -> None:
        view = self.view()
        before = view.rollout.weight
        weight = max(0, min(100, before + delta))
        self._request(Intent(view.name, SetWeight(weight), f"set the canary weight to {weight}% (from {before}%)"))

    def action_pick_weight(self) -> None:
        """Pick the target weight in one modal, then one command (one confirmation)."""
        view = self.view()
        env, before = view.name, view.rollout.weight
        # Ask the engine's rules first: nobody picks a weight only to hear "not paused".
        probe = SetWeight(0 if before else 100)
        refusal = preflight(self.cockpit.session, Intent(env, probe, "set the canary weight"))
        if refusal:
            self.notify(refusal, title=f"{env}: set-weight refused", severity="warning")
            return

        def picked(weight: int | None) -> None:
            if weight is not None:
                self._request(Intent(env, SetWeight(weight), f"set the canary weight to {weight}% (from {before}%)"))

        from cockpit.ui.screens.weight import WeightPicker

        needs_reason = self.cockpit.session.needs_reason(env)
        self.app.push_screen(WeightPicker(env, before, protected=needs_reason), picked)

    def on_weight_bar_requested(self, event: WeightBar.Requested) -> None:
        column = next((c for c in self._columns.values() if event.bar in c.query(WeightBar)), None)
        if column is None:
            return
        self.select_env(column.env)
        before = self.cockpit.session.view(column.env).rollout.weight
        self._request(
            Intent(
                column.env,
                SetWeight(event.weight),
                f"set the canary weight to {event.weight}% (from {before}%)",
            )
        )

    def action_promote(self) -> None:
        self._request(Intent(self.current, Promote(), "promote past the pause"))

    def action_pause(self) -> None:
        """One key both ways: Pause a progressing rollout, Resume one paused by hand."""
        r = self.view().rollout
        if r.paused_by is not None:
            self._request(Intent(self.current, Resume(), f"resume the rollout (paused by {r.paused_by})"))
        else:
            self._request(Intent(self.current, Pause(), "pause the rollout where it is"))

    def action_promote_full(self) -> None:
        canary = self.view().rollout.canary_version or "the canary"
        self._request(Intent(self.current, PromoteFull(), f"fully promote {canary} to 100%"))

    def action_abort(self) -> None:
        self._request(Intent(self.current, Abort(), "abort the rollout (all traffic to stable)"))

    def action_retry(self) -> None:
        target = self.view().rollout.target_version or "the last rollout"
        self._request(Intent(self.current, Retry(), f"retry the rollout of {target}"))

    def action_rollback(self) -> None:
        view = self.view()
        env, r = view.name, view.rollout
        # Ask the engine's rules first (abort first, nothing older retained...) so the
        # picker only opens when a rollback is possible at all.
        refusal = preflight(self.cockpit.session, Intent(env, Rollback(), "roll back"))
        if refusal:
            self.notify(refusal, title=f"{env}: rollback refused", severity="warning")
            return
        if capability(Rollback(0)) not in view.capabilities:
            # This backend can only go back to the previous revision: no choice to offer.
            self._request(Intent(env, Rollback(), "roll back to the previous revision"))
            return

        def picked(revision: str | None) -> None:
            if revision:
                number = int(revision)
                version = next((x.version for x in r.revisions if x.number == number), "?")
                what = f"roll back to revision {number} ({version}, from {r.stable_version})"
                self._request(Intent(env, Rollback(number), what))

        from cockpit.ui.screens.pickers import RevisionPicker

        self.app.push_screen(RevisionPicker(env, r.revisions, r.stable_version), picked)

    # ------------------------------------------------------------------ other screens and panes

    def action_gates(self) -> None:
        from cockpit.ui.screens.gates import GateScreen

        self.app.push_screen(GateScreen(self.current))

    def action_migrations(self) -> None:
        from cockpit.ui.screens.migrations import MigrationsScreen

        self.app.push_screen(MigrationsScreen(self.current))

    def action_migrate_next(self) -> None:
        from cockpit.ui import migration_text
        from cockpit.ui.screens.migrations import act

        act(self, self.cockpit.session, self.current, migration_text.next_ask(self.view()), "run next")

    def action_migrate_undo(self) -> None:
        from cockpit.ui import migration_text
        from cockpit.ui.screens.migrations import act

        act(self, self.cockpit.session, self.current, migration_text.undo_ask(self.view()), "roll back last")

    def action_history(self) -> None:
        session = self.cockpit.session
        from cockpit.ui.screens.history import HistoryScreen

        self.app.push_screen(HistoryScreen(session.journal, session.plan.service.name))

    def action_help(self) -> None:
        from cockpit.ui.screens.info import HelpScreen

        unavailable = {spec.id: why for spec in keys.ACTIONS if (why := self.unavailable(spec.method))}
        self.app.push_screen(HelpScreen(self.cockpit.keymap, unavailable))

    def action_theme(self) -> None:
        self.cockpit.cycle_theme()

    def action_logs(self) -> None:
        pane = self.query_one(LogPane)
        mode = pane.cycle_mode()
        self.notify(f"log pane: {mode}", timeout=1.5)

    def action_filter(self) -> None:
        self.query_one(LogPane).open_filter()

    def on_log_pane_filter_closed(self, _event: LogPane.FilterClosed) -> None:
        self.select_env(self.current)

    def action_log_end(self) -> None:
        self.query_one(LogPane).follow()

    def action_log_page(self, direction: int) -> None:
        self.query_one(LogPane).page(direction)

    def action_log_match(self, direction: int) -> None:
        problem = self.query_one(LogPane).jump(direction)
        if problem:
            self.notify(problem, timeout=2.5)

    def action_log_wrap(self) -> None:
        wrapped = self.query_one(LogPane).toggle_wrap()
        self.notify(f"log lines {'wrap' if wrapped else 'scroll sideways'}", timeout=1.5)

    def action_log_time(self) -> None:
        shown = self.query_one(LogPane).toggle_time()
        self.notify(f"log timestamps {'shown' if shown else 'hidden'}", timeout=1.5)

    def action_log_save(self) -> None:
        directory = self.cockpit.session.state_dir / "saved-logs"
        try:
            path, count = self.query_one(LogPane).save(directory)
        except OSError as err:
            self.notify(f"logs not saved: {err.strerror or err} ({directory})", severity="error")
            return
        self.notify(f"{count:,} log lines saved to {path} (readable by you only)", title="logs saved", timeout=8)

    async def action_quit(self) -> None:
        await self.cockpit.action_quit()
