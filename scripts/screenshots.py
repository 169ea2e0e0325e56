"""Screenshots of the real cockpit screens: ``python scripts/screenshots.py``.

Writes ``screenshots/*.svg`` (Textual's own export) and ``*.png`` (via ``rsvg-convert``)
of: the main screen mid-canary, the protected-action modal, the log filter, the
history, the help, the narrow (tabbed) layout and every theme.

The main screen is the real embedded demo (real services behind the local backend's
routers, on free ports, in a throw-away state dir), driven through its keys as a
person would. If the demo cannot start here, the deterministic in-memory backend of
the tests stands in (``--memory`` forces it).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402 - after the path fix above

from cockpit.engine.session import Session  # noqa: E402
from cockpit.engine.state import Phase  # noqa: E402
from cockpit.ui.app import CockpitApp  # noqa: E402
from cockpit.ui.config import UIConfig  # noqa: E402

OUT = ROOT / "screenshots"
SIZE = (160, 48)


def to_png(svg: Path) -> None:
    """rsvg-convert drops leading no-break spaces in <text> runs (columns then slide
    left), so the PNG is made from a copy using plain spaces with xml:space=preserve."""
    if shutil.which("rsvg-convert") is None:
        print("  (rsvg-convert not found: SVG only)")
        return
    text = svg.read_text(encoding="utf-8").replace("&#160;", "&#32;")
    text = re.sub(r"<svg ", '<svg xml:space="preserve" ', text, count=1)
    with tempfile.NamedTemporaryFile("w", suffix=".svg", delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    subprocess.run(["rsvg-convert", "-o", str(svg.with_suffix(".png")), tmp.name], check=True)
    Path(tmp.name).unlink()


async def shoot(app: CockpitApp, pilot: Pilot, name: str, title: str) -> None:
    await pilot.pause(0.3)
    svg = OUT / f"{name}.svg"
    svg.write_text(app.export_screenshot(title=title), encoding="utf-8")
    to_png(svg)
    print(f"  {svg.relative_to(ROOT)}")


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    await pilot.pause()


def demo_session(state: Path) -> Session:
    from cockpit.cli import demo_plan
    from cockpit.demo.session import DemoSession

    # The demo's simulated users start on each environment once it is up, as in `cockpit demo`.
    return DemoSession(demo_plan(0), state_dir=state, user="alice")


def memory_session(state: Path) -> Session:
    import tests.memory_backend  # noqa: F401 - registers the "memory" adapters
    from cockpit.plan.loader import parse_plan
    from tests.ui_fixtures import plan_text

    text = plan_text(interval="1s").replace(
        'source = "memory"', 'source = "memory"\n  options = { wave = true, split_traffic = true }'
    )
    return Session(parse_plan(text), state_dir=state, user="alice")


async def pick(app: CockpitApp, pilot: Pilot, version: str) -> None:
    from textual.widgets import OptionList

    await pilot.press("s")
    await until(pilot, lambda: app.screen.query(OptionList), 5, "the version picker")
    options = app.screen.query_one(OptionList)
    options.highlighted = next(
        i for i in range(options.option_count) if options.get_option_at_index(i).id == version
    )
    await pilot.press("enter")
    main = app.main_screen
    if main is not None and not app.session.needs_reason(main.current):
        # Unprotected: the summary of what the rollout will do, one Enter to start.
        await until(pilot, lambda: type(app.screen).__name__ == "StartSummary", 5, "the start summary")
        await pilot.press("enter")


async def main_screens(session: Session, real: bool) -> None:
    app = CockpitApp(session, config=UIConfig(log_height=34))
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot, lambda: app.session_started and all(v.up for v in session.views()), 60, "environments"
        )
        # staging: 1.1.0 walked to its second pause (analysis verdicts on screen);
        # dev: 1.1.0 just started. Production stays on stable for the modal.
        await pilot.press("right")
        await pick(app, pilot, "1.1.0")
        staging = lambda: session.view("staging").rollout  # noqa: E731
        await until(pilot, lambda: staging().phase is Phase.PAUSED, 30, "staging's first pause")
        if not real:
            await pilot.press("p")  # the memory plan pauses until promoted
        await until(
            pilot,
            lambda: staging().weight == 50 and staging().phase is Phase.PAUSED,
            60,
            "staging paused at 50%",
        )
        await pilot.press("left")
        await pick(app, pilot, "1.1.0")
        await until(pilot, lambda: session.view("dev").rollout.weight == 20, 30, "dev at 20%")
        await pilot.press("right")
        await asyncio.sleep(2.5 if real else 4)  # some live samples in the sparklines
        await shoot(app, pilot, "main-mid-canary", "cockpit · staging paused at 50 %")

        await pilot.press("t")
        await shoot(app, pilot, "theme-light", "cockpit · light theme")
        await pilot.press("t")
        await shoot(app, pilot, "theme-high-contrast", "cockpit · high-contrast theme")
        await pilot.press("t")
        await shoot(app, pilot, "theme-dark", "cockpit · dark theme (default)")

        await pilot.press("slash")
        await pilot.press(*("/checkout|error|routing/" if real else "/routing|started/"))
        await shoot(app, pilot, "log-filter", "cockpit · log filter (regex)")
        await pilot.press("escape")

        await pilot.press("l")
        await shoot(app, pilot, "logs-merged", "cockpit · logs of all environments merged")
        await pilot.press("l", "l", "l")

        await pilot.press("right")
        await pick(app, pilot, "1.2.0")
        await until(pilot, lambda: "Confirm" in type(app.screen).__name__, 5, "the protected-action modal")
        await pilot.press(*"production", "tab", *"INC-1042: ship the checkout fix")
        await shoot(
            app, pilot, "protected-modal", "cockpit · a protected environment asks for its name and a reason"
        )
        await pilot.press("escape")

        if not real:  # the memory plan pauses until promoted: staging waits at 50 %
            await pilot.press("left")
            await weight_picker(app, pilot)
            await pilot.press("right")

        if real:  # production's analysis catches 1.2.0: the alert stays until acknowledged
            await pick(app, pilot, "1.2.0")
            await until(pilot, lambda: "Confirm" in type(app.screen).__name__, 5, "the protected-action modal")
            await pilot.press(*"production", "tab", *"INC-1042: ship the checkout fix", "enter")
            production = lambda: session.view("production").rollout  # noqa: E731
            await until(
                pilot,
                lambda: production().phase is Phase.ABORTED and production().canary_version is None,
                60,
                "production's abort by analysis",
            )
            await until(pilot, lambda: bool(session.alerts()), 5, "the alert")
            await asyncio.sleep(1)
            await shoot(app, pilot, "alert-aborted", "cockpit · analysis aborted production: the alert stays")
            await pilot.press("g")  # the gates that aborted it: numbers, limits, stable beside canary
            await until(pilot, lambda: type(app.screen).__name__ == "GateScreen", 5, "the gate view")
            await pilot.pause(0.5)
            await shoot(app, pilot, "gates-aborted", "cockpit · the gate that aborted production")
            await pilot.pause(0.3)
            await pilot.press("escape")
            await pilot.resize_terminal(80, 24)
            await pilot.pause(0.5)
            await shoot(app, pilot, "narrow-80x24-aborted", "cockpit · 80×24 after the abort")
            await pilot.resize_terminal(*SIZE)
            await pilot.pause(0.3)
            # 1.1.0 passes analysis and waits for a promote: the weight picker over it.
            await pick(app, pilot, "1.1.0")
            await until(pilot, lambda: "Confirm" in type(app.screen).__name__, 5, "the protected-action modal")
            await pilot.press(*"production", "tab", *"INC-1043: the fix, properly", "enter")
            await until(
                pilot,
                lambda: production().phase is Phase.PAUSED and production().step_index >= 2,
                60,
                "production waiting for a promote",
            )
            await weight_picker(app, pilot)
            # 1.1.0's expand ran before its canary; its contract waits while 1.0.0 serves.
            await pilot.press("m")
            await until(pilot, lambda: type(app.screen).__name__ == "MigrationsScreen", 5, "the migrations view")
            await pilot.pause(0.5)
            await shoot(app, pilot, "migrations", "cockpit · production's migrations: expand applied, contract refused")
            await pilot.press("escape")

        await pilot.press("h")
        await until(pilot, lambda: type(app.screen).__name__ == "HistoryScreen", 5, "history")
        await shoot(app, pilot, "history", "cockpit · history (the journal)")
        await pilot.press("escape")

        await pilot.press("question_mark")
        await shoot(app, pilot, "help", "cockpit · keys")
        await pilot.press("escape")

        await pilot.resize_terminal(100, 40)
        await pilot.pause(0.5)
        await shoot(app, pilot, "narrow-tabs", "cockpit · a narrow terminal shows tabs")
        await pilot.resize_terminal(*SIZE)
        await pilot.pause(0.3)
        await pilot.press("q")  # rollouts are in flight: the cockpit asks first
        await until(pilot, lambda: type(app.screen).__name__ == "QuitScreen", 5, "the quit confirmation")
        await shoot(app, pilot, "quit-confirm", "cockpit · quitting mid-rollout asks first")
        await pilot.press("y")
        await until(pilot, lambda: app.session_closed, 30, "the environments to stop")


async def weight_picker(app: CockpitApp, pilot: Pilot) -> None:
    """The weight picker on the focused, paused environment: one change, one confirmation."""
    await pilot.press("w")
    await until(pilot, lambda: type(app.screen).__name__ == "WeightPicker", 5, "the weight picker")
    await pilot.press(*"70")
    await shoot(app, pilot, "weight-picker", "cockpit · the weight picker: now → target, one confirmation")
    await pilot.press("escape")


async def backend_down(state: Path) -> None:
    import tests.memory_backend  # noqa: F401
    from cockpit.plan.loader import parse_plan
    from tests.ui_fixtures import plan_text

    session = Session(
        parse_plan(plan_text(down=("staging",), interval="500ms")), state_dir=state, user="alice"
    )
    app = CockpitApp(session, config=UIConfig())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session_started, 10, "start")
        await asyncio.sleep(1.5)
        await shoot(app, pilot, "backend-down", "cockpit · staging's backend is down; the others run on")


async def run(force_memory: bool) -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cockpit-shots-") as tmp:
        state = Path(tmp)
        real = not force_memory
        if real:
            try:
                session = demo_session(state / "demo")
                await main_screens(session, real=True)
            except Exception as err:  # fall back, but say why
                print(f"the real demo did not run here ({err}); using the in-memory backend")
                real = False
        if not real:
            await main_screens(memory_session(state / "memory"), real=False)
        await backend_down(state / "down")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--memory", action="store_true", help="use the in-memory backend instead of the demo")
    args = parser.parse_args()
    print(f"writing {OUT.relative_to(ROOT)}/")
    asyncio.run(run(args.memory))


if __name__ == "__main__":
    main()
