"""The migrations view (``m``): the focused environment's database steps, over the dimmed
cockpit.

A table of the plan's [[migrations]] steps as the environment's database records them
(state, name, release, phase, how long it took, lint findings), the selected step's
output or error and its squawk findings (rule and line), and the two keys that act:
run the next pending step, roll back the last applied one. What each key would do - or
why a guard refuses it - is on screen before it is pressed; a refused key says why and
sends nothing. A key that acts goes the way of every other action (a ``RequestAction``
to the app: the engine's check, the protected environment's typed confirmation and
reason, the session), and the view follows the environment 4×/s, so a running step is
seen running and then applied or failed.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, cast

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static

from cockpit.engine.session import Session
from cockpit.engine.views import EnvView
from cockpit.migrations.api import LintFinding, MigrationsView, StepState, StepView
from cockpit.ui import keys, render
from cockpit.ui.host import CockpitHost
from cockpit.ui.intents import Intent, RequestAction, preflight
from cockpit.ui.migration_text import (
    STATE_MARK,
    MigrationAsk,
    fmt_took,
    next_ask,
    state_text,
    undo_ask,
)
from cockpit.ui.screens.modal import WATCH_INTERVAL, CockpitModal

log = logging.getLogger(__name__)

SHOWN_OUTPUT_LINES = 40  # the newest lines of a step's output (the record keeps it trimmed)


# --------------------------------------------------------------------------- pure parts


def default_selection(m: MigrationsView) -> str:
    """The step worth looking at first: the one running, one that failed or was
    interrupted, the next to run, the last applied, else the first."""
    for state in (StepState.RUNNING, StepState.FAILED, StepState.INTERRUPTED):
        hit = next((s for s in m.steps if s.state is state), None)
        if hit is not None:
            return hit.name
    for name in (m.running, m.next_step, m.last_applied):
        if name and any(s.name == name for s in m.steps):
            return name
    return m.steps[0].name if m.steps else ""


def newly_moving(before: dict[str, StepState] | None, m: MigrationsView) -> str | None:
    """A step that started running, failed or was interrupted since ``before`` (the states
    last drawn): the view follows it there, since that is what the person waits to see."""
    if before is None:
        return None
    moving = (StepState.RUNNING, StepState.FAILED, StepState.INTERRUPTED)
    return next((s.name for s in m.steps if s.state in moving and before.get(s.name) is not s.state), None)


def lint_cell(step: StepView) -> Content:
    """``2 ⚠`` / ``1 ✗`` (an error-level finding among them) / ``—``."""
    if not step.lint:
        return Content.styled("—", render.DIM)
    errors = any(f.level == "error" for f in step.lint)
    return Content.styled(f"{len(step.lint)} {'✗' if errors else '⚠'}", "$fail bold" if errors else "$warn")


def steps_table(m: MigrationsView, selected: str, width: int) -> Content:
    """One line per step, the selected one marked ``▸`` and highlighted."""
    state_w, release_w, phase_w, took_w = 14, 9, 9, 8
    name_w = max(8, min(max((len(s.name) for s in m.steps), default=8) + 2, width - 2 - state_w - release_w - phase_w - took_w - 5))
    head = Content.styled(
        f"  {'state':<{state_w}}{'step':<{name_w}}{'release':<{release_w}}{'phase':<{phase_w}}{'took':<{took_w}}lint",
        render.DIM,
    )
    rows = [head]
    for step in m.steps:
        chosen = step.name == selected
        glyph, style = STATE_MARK[step.state]
        name = step.name if len(step.name) < name_w else step.name[: name_w - 2] + "…"
        took = "…" if step.state is StepState.RUNNING else fmt_took(step.duration)
        row = Content.assemble(
            ("▸ " if chosen else "  ", "$accent bold"),
            (f"{glyph} {step.state.value:<{state_w - 2}}", style),
            (f"{name:<{name_w}}", "bold reverse" if chosen else "bold"),
            (f"{step.release:<{release_w}}", render.TEXT),
            (f"{step.phase:<{phase_w}}", "$accent" if step.phase == "expand" else "$warn"),
            (f"{took:<{took_w}}", render.TEXT),
            lint_cell(step),
        )
        rows.append(row.truncate(width, ellipsis=True) if width > 0 else row)
    return Content("\n").join(rows)


def finding_line(f: LintFinding) -> Content:
    """``✗ line 3:1  adding-not-nullable-field  (up) Adding a NOT NULL field requires…``"""
    mark, style = ("✗", "$fail bold") if f.level == "error" else ("⚠", "$warn")
    return Content.assemble(
        (f"{mark} line {f.line}:{f.column}  ", style),
        (f.rule, "bold"),
        (f"  ({f.direction}) ", render.DIM),
        (f.message, render.TEXT),
        (f"\n    {f.help}" if f.help else "", render.DIM),
    )


def step_detail(step: StepView | None, m: MigrationsView) -> Content:
    """The selected step: what it is, its error, its output, its lint findings."""
    if step is None:
        return Content.styled("no steps in this plan", render.DIM)
    kind = f"{step.kind} · {'reversible' if step.reversible else 'irreversible'}"
    lines = [
        Content.assemble(
            (step.name, "bold"),
            (f"   {step.phase} of {step.release} · {kind} · ", render.DIM),
            state_text(step.state),
            (f" in {fmt_took(step.duration)}" if step.duration is not None else "", render.DIM),
        )
    ]
    if step.state is StepState.INTERRUPTED:
        lines.append(
            Content.styled(
                "  its runner died mid-step; a step outside a transaction waits for a person:"
                " cockpit migrate --resolve NAME applied|pending",
                "$warn",
            )
        )
    if step.error:
        lines.append(Content.assemble(("error  ", "$fail bold"), (step.error, "$fail")))
    if step.output:
        out = step.output.rstrip("\n").splitlines()
        shown = out[-SHOWN_OUTPUT_LINES:]
        more = f" (last {len(shown)} of {len(out)} lines)" if len(out) > len(shown) else ""
        lines.append(Content.styled(f"output{more}", "bold"))
        lines += [Content.styled(f"  {line}", render.TEXT) for line in shown]
    elif step.state is StepState.RUNNING:
        lines.append(Content.styled("running… no output yet", render.DIM))
    elif not step.error:
        lines.append(Content.styled("no output recorded", render.DIM))
    findings = step.lint or tuple(f for f in m.findings if f.step == step.name)
    if findings:
        lines.append(Content.styled(f"lint (squawk): {len(findings)} finding{'s' if len(findings) != 1 else ''}", "bold"))
        lines += [finding_line(f) for f in findings]
    elif step.kind in ("sql", "file") and m.lint_error is None:
        lines.append(Content.styled("lint (squawk): no findings", render.DIM))
    return Content("\n").join(lines)


def ask_line(key: str, label: str, ask: MigrationAsk, width: int = 0) -> Content:
    """``M run next  run migration orders-full-name (expand of 1.1.0)`` or, refused, the
    key dimmed and the guard's words: what the key would do is seen before it is pressed.
    Wrapped to ``width`` under the text, not under the key."""
    keycap = f"{key:>3} {label:<15} "
    if ask.command is None:
        text = Content.styled(ask.refused or "nothing to do", render.DIM)
    elif ask.refused:
        text = Content.assemble((f"{ask.what}: ", render.DIM), (f"refused: {ask.refused}", "$warn"))
    else:
        text = Content.styled(ask.what, render.TEXT)
    cap = Content.styled(keycap, render.DIM if ask.command is None or ask.refused else "bold $accent")
    room = width - len(keycap)
    if width <= 0 or room < 20:
        return Content.assemble(cap, text)
    lines = text.wrap(room)
    indent = Content(" " * len(keycap))
    return Content("\n").join(Content.assemble(cap if i == 0 else indent, line) for i, line in enumerate(lines))


def title(view: EnvView, width: int = 0) -> Content:
    """``Migrations · production  protected · sqlite:///…``; the database on a line of its
    own when the line would not fit."""
    m = view.migrations
    where = m.database if m is not None and m.database else "no database"
    parts: list[str | tuple[str, str]] = [("Migrations · ", "bold"), (view.name, "bold")]
    if view.protected:
        parts.append(("  protected", "$warn"))
    head = Content.assemble(*parts)
    if width <= 0 or head.cell_length + 3 + len(where) <= width:
        return Content.assemble(head, (f" · {where}", render.DIM))
    return Content.assemble(head, ("\n", ""), (where, render.DIM))


def trouble(m: MigrationsView | None) -> Content | None:
    """The database cannot be read, or squawk cannot lint: said plainly, at the top."""
    if m is None:
        return None
    lines = []
    if m.error:
        lines.append(Content.assemble(("! database: ", "$warn bold"), (m.error, "$warn")))
    if m.lint_error:
        lines.append(Content.assemble(("! lint: ", "$warn bold"), (m.lint_error, "$warn")))
    return Content("\n").join(lines) if lines else None


# --------------------------------------------------------------------------- the modal


class MigrationsScreen(CockpitModal[None]):
    DEFAULT_CSS = """
    MigrationsScreen { align: center middle; }
    MigrationsScreen #migr-dialog { width: 96%; max-width: 130; height: 94%; padding: 0 1;
                                    border: thick $accent; background: $surface; }
    MigrationsScreen #migr-title { height: auto; }
    MigrationsScreen #migr-trouble { height: auto; display: none; background: $warn 15%; }
    MigrationsScreen #migr-trouble.-shown { display: block; }
    MigrationsScreen #migr-table { height: auto; max-height: 45%; margin-top: 1; }
    MigrationsScreen #migr-body { height: 1fr; margin-top: 1; scrollbar-size-vertical: 1; }
    MigrationsScreen #migr-keys { height: auto; margin-top: 1; }
    MigrationsScreen #migr-hint { height: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "close", id="migrations_close"),
        Binding("q", "close", "close", show=False, id="migrations_close_q"),
        Binding("down,j", "select(1)", "next step", show=False, id="migrations_down"),
        Binding("up,k", "select(-1)", "previous step", show=False, id="migrations_up"),
        Binding("pagedown", "page(1)", "page", show=False, id="migrations_page_down"),
        Binding("pageup", "page(-1)", "page", show=False, id="migrations_page_up"),
        # The same ids as the main screen's keys: a remapped key is remapped here too.
        Binding(keys.BY_ID["migrate_next"].key, "run_next", "run next", id="migrate_next"),
        Binding(keys.BY_ID["migrate_undo"].key, "undo_last", "roll back last", id="migrate_undo"),
    ]

    def __init__(self, env: str) -> None:
        super().__init__()
        self.env = env
        self.selected = ""  # the step shown below the table, kept by name
        self._shown: tuple[object, ...] | None = None
        self._texts: dict[str, tuple[str, tuple[object, ...]]] = {}
        self._failed = False
        self._states: dict[str, StepState] | None = None  # as last drawn: what changed since

    @property
    def cockpit(self) -> CockpitHost:
        return cast(CockpitHost, self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="migr-dialog"):
            yield Static("", id="migr-title")
            yield Static("", id="migr-trouble")
            with VerticalScroll(id="migr-table", can_focus=False):
                yield Static("", id="migr-rows")
            with VerticalScroll(id="migr-body", can_focus=False):
                yield Static("", id="migr-detail")
            yield Static("", id="migr-keys")
            yield Static("", id="migr-hint")

    def on_mount(self) -> None:
        self.follow()
        self.set_interval(WATCH_INTERVAL, self.follow, name="migrations-follow")

    def on_resize(self, _event: events.Resize) -> None:
        self.follow(force=True)

    # ------------------------------------------------------------------ live

    def view(self) -> EnvView:
        return self.cockpit.session.view(self.env)

    def follow(self, force: bool = False) -> None:
        """Redraw when the environment's migrations (or the selection) changed."""
        try:
            view = self.view()
            key: tuple[object, ...] = (view.migrations, view.protected, self.selected, self._width())
            if key == self._shown and not force:
                return
            self._shown = key
            self.draw(view)
        except Exception:  # a drawing bug must not take the cockpit down mid-release
            log.exception("the migrations view could not be drawn")
            if not self._failed:
                self._failed = True
                self.notify("the migrations view could not be drawn; details are in the log", severity="error")

    def _width(self) -> int:
        width = self.query_one("#migr-rows", Static).size.width
        return width if width > 0 else max(20, self.app.size.width - 8)

    def _key(self, binding_id: str) -> str:
        return keys.display_keys(keys.BY_ID[binding_id], self.cockpit.keymap)

    def draw(self, view: EnvView) -> None:
        m = view.migrations
        width = self._width()
        self._set("#migr-title", title(view, width))
        problem = trouble(m)
        self._set("#migr-trouble", problem or Content(""))
        self.query_one("#migr-trouble").set_class(problem is not None, "-shown")
        if m is None or m.database is None:
            why = (
                "no [[migrations]] in this plan"
                if m is None
                else f"{view.name} has no [environments.database] in the plan: its steps run nowhere"
            )
            self._set("#migr-rows", Content.styled(why, render.DIM))
            self._set("#migr-detail", Content(""))
            self._set("#migr-keys", Content(""))
            self._set("#migr-hint", Content.styled("Esc closes", render.DIM))
            return
        news = newly_moving(self._states, m)
        self._states = {s.name: s.state for s in m.steps}
        if news is not None:
            self.selected = news  # a step started or stopped behind the list: show it
        elif self.selected not in self._states:
            self.selected = default_selection(m)
        step = next((s for s in m.steps if s.name == self.selected), None)
        self._set("#migr-rows", steps_table(m, self.selected, width))
        self._keep_in_sight(next((i for i, s in enumerate(m.steps) if s.name == self.selected), 0))
        self._set("#migr-detail", step_detail(step, m))
        run_key, undo_key = self._key("migrate_next"), self._key("migrate_undo")
        asks = [
            ask_line(run_key, "run next", next_ask(view), width),
            ask_line(undo_key, "roll back last", undo_ask(view), width),
        ]
        if m.running:
            asks.insert(0, Content.styled(f"● {m.running} is running…", STATE_MARK[StepState.RUNNING][1]))
        self._set("#migr-keys", Content("\n").join(asks))
        hint = f"↑/↓ step · {run_key} run next · {undo_key} roll back last · PgUp/PgDn output · Esc closes"
        self._set("#migr-hint", Content.styled(hint, render.DIM))

    def _keep_in_sight(self, index: int) -> None:
        """Scroll the table (it takes at most half the dialog) so the selected row shows."""
        table = self.query_one("#migr-table", VerticalScroll)
        row, height = index + 1, table.size.height  # + 1: the heading
        if height <= 0:
            return
        if row < table.scroll_y + 1 or row >= table.scroll_y + height:
            table.scroll_to(y=max(0, row - height + 1) if row >= table.scroll_y + height else row - 1, animate=False)

    def _set(self, part: str, content: Content) -> None:
        # Static.update() relayouts; skip it when neither the text nor its styles changed.
        shown = render.tight(content)
        key = (shown.plain, tuple(shown.spans))
        if self._texts.get(part) != key:
            self._texts[part] = key
            self.query_one(part, Static).update(shown)

    # ------------------------------------------------------------------ keys

    def action_close(self) -> None:
        self.dismiss(None)

    def action_select(self, step: int) -> None:
        m = self.view().migrations
        if m is None or not m.steps:
            return
        names = [s.name for s in m.steps]
        index = names.index(self.selected) if self.selected in names else 0
        self.selected = names[max(0, min(len(names) - 1, index + step))]
        self.query_one("#migr-body", VerticalScroll).scroll_home(animate=False)
        self.follow(force=True)

    def action_page(self, direction: int) -> None:
        body = self.query_one("#migr-body", VerticalScroll)
        body.scroll_relative(y=direction * max(1, body.size.height - 1), animate=False)

    def action_run_next(self) -> None:
        self.ask(next_ask(self.view()), "run next")

    def action_undo_last(self) -> None:
        self.ask(undo_ask(self.view()), "roll back last")

    def ask(self, ask: MigrationAsk, label: str) -> None:
        act(self, self.cockpit.session, self.env, ask, label)


def act(screen: Screen[Any], session: Session, env: str, ask: MigrationAsk, label: str) -> None:
    """Send ``ask`` from ``screen`` the way every action goes (a ``RequestAction`` to the
    app), or say why the key does nothing. A guard's refusal is put to the engine too,
    so it is journaled like any refused key; the engine's words win if it has its own."""
    if ask.command is None:
        screen.notify(ask.refused or "nothing to do", title=f"{env}: {label}", severity="warning")
        return
    intent = Intent(env, ask.command, ask.what)
    if ask.refused:
        refusal = preflight(session, intent) or ask.refused
        screen.notify(refusal, title=f"{env}: {ask.command.action} refused", severity="warning")
        return
    screen.post_message(RequestAction(intent))
