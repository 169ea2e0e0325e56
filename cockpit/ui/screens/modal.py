"""What every cockpit modal shares: the cockpit stays visible behind it, dimmed, and a
modal that acts on an environment notices when that environment changes under it.

Why the watch: a modal opened at "Paused at 20 %, set 30 %" that is still open when
analysis aborts the rollout behind it would send a command decided on a state that no
longer exists. The modal remembers the state it was opened on (:class:`EnvSnapshot`),
reads the session's view a few times a second, and once anything that the decision
depends on changed, says what changed and refuses to confirm: the engineer closes it
and decides again on what is now true. The engine's guardrails still decide when a
command arrives; this stops a person confirming something they did not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar, cast

from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from cockpit.engine.state import Phase
from cockpit.engine.views import EnvView
from cockpit.ui.host import CockpitHost

ResultType = TypeVar("ResultType")

WATCH_INTERVAL = 0.25  # seconds between two looks at the environment while a modal is open


@dataclass(frozen=True)
class EnvSnapshot:
    """The parts of an environment's state a decision in a modal rests on."""

    phase: Phase
    step: str  # "2/5", "-" when no rollout is on
    weight: int
    epoch: int  # grows at every start, abort and rollback: a different rollout
    target: str | None
    canary: str | None
    stable: str

    @classmethod
    def of(cls, view: EnvView) -> EnvSnapshot:
        r = view.rollout
        return cls(
            r.phase, r.step_label, r.weight, r.epoch, r.target_version, r.canary_version, r.stable_version
        )

    @property
    def in_rollout(self) -> bool:
        return self.phase in (Phase.PROGRESSING, Phase.PAUSED)

    def changes_to(self, now: EnvSnapshot) -> list[str]:
        """What differs in ``now``, one short line each, as a person would say it."""
        out = []
        if now.phase != self.phase:
            out.append(f"phase {self.phase.value} → {now.phase.value}")
        if now.epoch != self.epoch or now.target != self.target:
            before, after = self.target or "none", now.target or "none"
            if before == after:  # the epoch moved: aborted, retried or rolled back meanwhile
                out.append(f"the rollout of {before} ended or was restarted")
            else:
                out.append(f"rollout {before} → {after}")
        if now.step != self.step:
            out.append(f"step {self.step} → {now.step}")
        if now.weight != self.weight:
            out.append(f"weight {self.weight}% → {now.weight}%")
        if now.canary != self.canary:
            out.append(f"canary {self.canary or '—'} → {now.canary or '—'}")
        if now.stable != self.stable:
            out.append(f"stable {self.stable} → {now.stable}")
        return out

    def same_rollout(self, now: EnvSnapshot) -> bool:
        """``now`` is still the rollout this snapshot saw, still in progress (it may have
        moved on a step): what an abort needs to stay meaningful."""
        return now.in_rollout and now.epoch == self.epoch and now.target == self.target


class CockpitModal(ModalScreen[ResultType]):
    """A modal over the cockpit: the screen behind stays drawn, dimmed.

    The app's stylesheet gives every ``Screen`` an opaque background, and a widget's
    DEFAULT_CSS always loses to the app's CSS, so the translucent background is set in
    ``CSS`` (the app's own level) under a class, which outranks the app's type rule.
    """

    SCOPED_CSS: ClassVar[bool] = False  # the rule below styles the screen itself
    CSS: ClassVar[str] = """
    .-cockpit-modal { background: $background 55%; }
    .-cockpit-modal:ansi { background: transparent; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-cockpit-modal")


class WatchedModal(CockpitModal[ResultType]):
    """A modal that acts on ``env`` and goes stale when that environment changes.

    Subclasses compose a ``Static`` with id ``stale`` (shown only when stale), call
    :meth:`still_valid` right before acting (a change between two timer ticks counts
    too) and may override :meth:`blocks` and :meth:`on_stale`.
    """

    DEFAULT_CSS = """
    WatchedModal #stale {
        display: none; height: auto; margin-top: 1; padding: 0 1;
        color: $fail; text-style: bold; border-left: thick $fail;
    }
    WatchedModal #stale.-shown { display: block; }
    """

    def __init__(self, env: str, *, watch: bool = True) -> None:
        """``watch``: read the environment through the hosting cockpit (off only for a
        modal shown outside a cockpit, as in a test of its keys alone)."""
        super().__init__()
        self.env = env
        self.watching = watch
        self.opened_on: EnvSnapshot | None = None
        self.changed: list[str] = []  # what changed since the modal opened; [] while fresh
        self.stale = False  # a change that forbids acting: close and reopen

    def _read(self) -> EnvSnapshot:
        return EnvSnapshot.of(cast(CockpitHost, self.app).session.view(self.env))

    def on_mount(self) -> None:
        if self.watching:
            self.opened_on = self._read()
            self.set_interval(WATCH_INTERVAL, self.look, name="stale-watch")

    def blocks(self, opened: EnvSnapshot, now: EnvSnapshot) -> bool:
        """Whether a change from ``opened`` to ``now`` forbids acting. Any change does,
        by default; an abort overrides this (it stays right while the rollout lasts)."""
        return True

    def look(self) -> None:
        """Compare the environment with what the modal was opened on; say what changed."""
        if self.opened_on is None:
            return
        now = self._read()
        changed = self.opened_on.changes_to(now)
        if self.stale and not changed:
            # Changed and changed back (weight 20 -> 30 -> 20): still not the state the
            # person looked at when deciding; staleness is for good, so keep saying why.
            return
        if changed == self.changed:
            return
        self.changed = changed
        # Once stale, ``changed`` stays non-empty (see above) and ``blocks`` stays true: an
        # abort's rollout cannot come back, epochs only grow.
        self.stale = bool(changed) and self.blocks(self.opened_on, now)
        self._show_changes()
        self.on_stale()

    def _show_changes(self) -> None:
        box = self.query_one("#stale", Static)
        if not self.changed:
            box.remove_class("-shown")
            return
        head = (
            f"⚠ {self.env} changed since you opened this: close (Esc) and decide again"
            if self.stale
            else f"⚠ {self.env} changed since you opened this (the action still applies)"
        )
        box.update(Content("\n").join([Content(head), *(Content(f"  • {c}") for c in self.changed)]))
        box.add_class("-shown")

    def on_stale(self) -> None:
        """Hook: disable what acts (a confirm button), or re-enable it."""

    def still_valid(self) -> bool:
        """Look once more, right now; ``False`` when acting is forbidden (and shown why)."""
        self.look()
        return not self.stale
