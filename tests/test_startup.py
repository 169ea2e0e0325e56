"""The first frame does not wait for the plan: the app paints a preview (header, one
empty column per environment saying "loading plan…"), then reads the plan in a worker
thread, opens the session and puts the main screen in its place. A plan that cannot be
loaded ends the app with the error kept for the command line."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cockpit.engine.session import Session
from cockpit.plan.loader import PlanError, parse_plan
from cockpit.plan.models import Plan
from cockpit.ui.app import CockpitApp
from cockpit.ui.config import UIConfig
from cockpit.ui.loading import Preview, SessionLoader
from cockpit.ui.screens.loading import LOADING, LoadingScreen
from cockpit.ui.screens.main import MainScreen
from tests.ui_fixtures import SIZE, plan_text, wait_for

pytestmark = pytest.mark.asyncio

PREVIEW = Preview("shop", "Demo web shop API", ("dev", "staging", "production"), "alice")


def screen_text(app: CockpitApp) -> str:
    """The characters of the frame the app last composed, row by row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


class GatedLoader:
    """A plan that takes as long as the test wants: read_plan blocks (in the app's worker
    thread) until ``release`` is set, then parses the real plan or raises."""

    def __init__(self, tmp_path: Path, text: str | None = None) -> None:
        self.release = threading.Event()
        self.text = text or plan_text()
        self.tmp_path = tmp_path
        self.reads = 0

    def read_plan(self) -> Plan:
        self.reads += 1
        if not self.release.wait(10):
            raise TimeoutError("the test never released the plan")
        return parse_plan(self.text, "slow.toml")

    def open_session(self, plan: Plan) -> Session:
        return Session(plan, state_dir=self.tmp_path / "state", user="alice", log_capacity=2000)

    def loader(self) -> SessionLoader:
        return SessionLoader(PREVIEW, self.read_plan, self.open_session)


async def test_the_first_frame_is_painted_before_the_plan_is_loaded(tmp_path: Path) -> None:
    gate = GatedLoader(tmp_path)
    app = CockpitApp(load_session=gate.loader(), config=UIConfig())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: gate.reads == 1, what="the plan being read")
        # The plan is still being read: the preview is what is on screen.
        assert isinstance(app.screen, LoadingScreen)
        assert not hasattr(app, "session")
        text = screen_text(app)
        assert "shop" in text and "driving" in text and "alice" in text
        for env in PREVIEW.envs:
            assert env in text
        assert text.count(LOADING) == 3, text
        gate.release.set()
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="the main screen")
        await wait_for(pilot, lambda: app.session_started, what="the session to start")
        text = screen_text(app)
        assert LOADING not in text
        assert "production" in text and "1.0.0" in text  # the real columns, filled in
        assert app.session.plan.service.name == "shop"
        await app.action_quit()
        await wait_for(pilot, lambda: app.session_closed, what="the session to close")


async def test_a_bad_plan_ends_the_app_with_the_error_for_the_command_line(tmp_path: Path) -> None:
    gate = GatedLoader(tmp_path, text=plan_text().replace('name = "shop"', 'name = "Not A Name"'))
    gate.release.set()
    app = CockpitApp(load_session=gate.loader(), config=UIConfig())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.load_error is not None, what="the load error")
    assert isinstance(app.load_error, PlanError)
    assert any("service" in str(issue) for issue in app.load_error.issues)
    assert app.return_code == 1
    assert not hasattr(app, "session")


async def test_q_on_the_preview_leaves_at_once(tmp_path: Path) -> None:
    gate = GatedLoader(tmp_path)
    app = CockpitApp(load_session=gate.loader(), config=UIConfig())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: gate.reads == 1, what="the plan being read")
        await pilot.press("q")
        await pilot.pause()
        gate.release.set()  # the worker thread ends; the app is already leaving
    assert app.return_code == 0
    assert not hasattr(app, "session")


async def test_ctrl_q_while_the_plan_loads_leaves_without_an_error(tmp_path: Path) -> None:
    """ctrl+q is the app's own binding (the quit confirmation's path): before the session
    exists it has nothing to confirm or stop, and must not trip over the missing session."""
    gate = GatedLoader(tmp_path)
    app = CockpitApp(load_session=gate.loader(), config=UIConfig())
    errors: list[BaseException] = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: gate.reads == 1, what="the plan being read")
        assert app.check_action("acknowledge_alert", ()) is False  # the footer asks this while loading
        try:
            await app.action_quit()
        except Exception as err:  # the test reports any error it meets
            errors.append(err)
        await pilot.pause()
        gate.release.set()
    assert not errors, errors
    assert app.return_code == 0
    assert app.exit_summary == []


async def test_the_app_needs_exactly_one_of_a_session_and_a_loader() -> None:
    with pytest.raises(ValueError, match="session or a session loader"):
        CockpitApp()


def run_in_pty(args: list[str], cwd: Path, timeout: float = 30) -> tuple[int, str]:
    """``python -m cockpit ARGS`` on a pseudo-terminal (the screen needs one): its exit code
    and everything it wrote."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cockpit", *args],
        stdin=slave, stdout=slave, stderr=slave, cwd=cwd, start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color", "COCKPIT_STATE_DIR": str(cwd / "state")},
    )  # fmt: skip
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, output.decode(errors="replace")


async def test_open_on_a_bad_plan_lists_its_problems_as_check_does(tmp_path: Path) -> None:
    """The plan is validated after the first frame now: its problems must still end the
    command as `cockpit check` reports them (exit 2, every problem listed)."""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[service]\nname = "Not A Name"\n\n[[environments]]\nname = "dev"\ninitial_version = "1.0.0"\n'
        '  [environments.backend]\n  adapter = "local"\n    [environments.backend.options]\n'
        '    versions = ["1.0.0"]\n\n[strategy.canary]\nsteps = [{ set_weight = 20 }]\n'
    )
    code, out = run_in_pty(["open", str(bad)], tmp_path)
    assert code == 2, out
    assert f"{bad}: 1 problem found" in out, out
    assert "service.name" in out.split("1 problem found", 1)[1]
    assert "Traceback" not in out
