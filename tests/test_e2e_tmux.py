"""End to end: the real `cockpit demo` in tmux, driven by keys, read from the captured screen.

One run promotes 1.1.0 on staging step by step (its pauses last 5 s). The other is the
README's walk-through on production, whose pause waits for a person: 1.2.0 started
through the protected-action modal and aborted by analysis; then 1.1.0, its weight set
with the weight picker (one confirmation), promoted through the pause to 100 %.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 180, 50
ENVS = ("dev", "staging", "production")


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.run("send-keys", "-t", "tui", key)
            time.sleep(0.15)  # let the app take each key before the next, as a person would

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", "tui", "-l", text)
        time.sleep(0.15)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "tui")

    def column(self, env: str) -> str:
        """The text of one environment's column (columns are equal thirds of the screen)."""
        index = ENVS.index(env)
        width = WIDTH // len(ENVS)
        lines = self.screen().splitlines()[1:32]
        return "\n".join(line[index * width : (index + 1) * width] for line in lines)

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen was:\n{self.screen()}")
            time.sleep(0.25)


@pytest.fixture
def cockpit_in_tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed (scripts/setup.sh --test installs it)")
        pytest.skip("tmux is not installed")
    tmux = Tmux(f"cockpit-e2e-{uuid.uuid4().hex[:8]}")
    # If the app dies, its last words stay on the screen for the failure message.
    command = (
        f"{sys.executable} -m cockpit demo --port-base 0 --state-dir {tmp_path};"
        ' echo "[cockpit exited $?]"; sleep 600'
    )
    # Textual sizes itself from COLUMNS/LINES when set (pytest sets them): make them the pane size.
    env = {"COCKPIT_USER": "e2e", "TERM": "xterm-256color", "COLUMNS": str(WIDTH), "LINES": str(HEIGHT)}
    tmux.run(
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        str(WIDTH),
        "-y",
        str(HEIGHT),
        *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
        command,
    )
    try:
        yield tmux
    finally:
        try:
            tmux.keys("q")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and "[cockpit exited" not in tmux.screen():
                time.sleep(0.2)
        except subprocess.CalledProcessError:
            pass  # the session ended with the app: that is the clean way out
        subprocess.run(["tmux", "-L", tmux.socket, "kill-server"], capture_output=True)


def test_demo_release_driven_by_keys(cockpit_in_tmux: Tmux) -> None:
    tui = cockpit_in_tmux
    # The three environments come up, each with its stable replicas ready.
    tui.wait(
        "three healthy environments",
        lambda: all("Healthy" in tui.column(e) and "ready ✓" in tui.column(e) for e in ENVS),
        30,
    )
    assert "driving" in tui.screen().splitlines()[0]

    # Staging (not protected): start 1.1.0 and promote it past every pause, step by step.
    tui.keys("Right", "s")
    tui.wait("the version picker", lambda: "Start a rollout on staging" in tui.screen(), 10)
    tui.keys("Down", "Enter")  # newest first: 1.2.0, then 1.1.0
    tui.wait("the start summary", lambda: "Start a rollout on staging?" in tui.screen(), 10)
    assert "staging  1.0.0 → 1.1.0" in tui.screen() and "pause 5s" in tui.screen()
    tui.keys("Enter")
    tui.wait("the canary of 1.1.0 on staging", lambda: "canary 1.1.0" in tui.column("staging"), 20)
    promotes = 0
    deadline = time.monotonic() + 90
    while "Healthy" not in tui.column("staging") or "stable 1.1.0" not in tui.column("staging"):
        assert time.monotonic() < deadline, tui.screen()
        if "Paused" in tui.column("staging"):
            tui.keys("p")
            promotes += 1
            tui.wait(
                "the pause to end",
                lambda: "Paused" not in tui.column("staging") or "Healthy" in tui.column("staging"),
                10,
            )
        time.sleep(0.25)
    assert promotes >= 1
    assert "stable 1.1.0" in tui.column("staging") and "canary —" in tui.column("staging")



def confirm_protected(tui: Tmux, reason: str) -> None:
    """The protected-action modal: the environment's name typed out, then a reason."""
    tui.wait("the protected-action modal", lambda: "why, ticket" in tui.screen(), 10)
    tui.type("production")
    tui.keys("Enter")
    tui.type(reason)
    tui.keys("Enter")
    tui.wait("the modal to close", lambda: "why, ticket" not in tui.screen(), 10)


def test_readme_walkthrough_on_production(cockpit_in_tmux: Tmux) -> None:
    tui = cockpit_in_tmux
    started = time.monotonic()
    production = lambda: tui.column("production")  # noqa: E731
    tui.wait("production healthy", lambda: "Healthy" in production() and "ready ✓" in production(), 30)

    # 1.2.0: its summary shows in the one confirmation; analysis right after 20 % aborts it.
    tui.keys("Right", "Right", "s")
    tui.wait("the version picker", lambda: "Start a rollout on production" in tui.screen(), 10)
    tui.keys("Enter")  # 1.2.0, the newest
    tui.wait("the summary in the modal", lambda: "production  1.0.0 → 1.2.0" in tui.screen(), 10)
    assert "steps (5)" in tui.screen()
    confirm_protected(tui, "e2e: ship 1.2.0")
    tui.wait("the canary of 1.2.0", lambda: "canary 1.2.0" in production(), 20)
    tui.wait("analysis to abort 1.2.0", lambda: "Aborted" in production(), 30)
    assert "analysis failed" in production() and "stable 1.0.0" in production()
    tui.wait("the canary to be gone", lambda: "canary —" in production(), 20)

    # 1.1.0: analysis passes, then the pause waits for a person as long as it takes.
    tui.keys("s")
    tui.wait("the version picker", lambda: "Start a rollout on production" in tui.screen(), 10)
    tui.keys("Down", "Enter")  # 1.2.0, then 1.1.0
    tui.wait("the summary of 1.1.0", lambda: "production  1.0.0 → 1.1.0" in tui.screen(), 10)
    confirm_protected(tui, "e2e: ship 1.1.0")
    tui.wait("the pause after analysis", lambda: "Paused" in production() and "canary 1.1.0" in production(), 40)

    # The weight picker: 20 % -> 40 % in one change, one confirmation, one reason.
    tui.keys("w")
    tui.wait("the weight picker", lambda: "Canary weight on production" in tui.screen(), 10)
    assert "now 20%" in tui.screen()
    tui.keys("4", "0")
    tui.wait("target 40%", lambda: "target 40%" in tui.screen(), 5)
    tui.keys("Enter")
    tui.wait("the confirmation", lambda: "set the canary weight to 40% (from 20%)" in tui.screen(), 10)
    confirm_protected(tui, "e2e: more traffic")
    tui.wait("weight 40%", lambda: " 40%" in production() and "Paused" in production(), 15)

    # Promote through the pause: 50 %, analysis again, then 1.1.0 is stable everywhere here.
    tui.keys("p")
    confirm_protected(tui, "e2e: looks good")
    tui.wait(
        "1.1.0 promoted", lambda: "Healthy" in production() and "stable 1.1.0" in production(), 40
    )
    print(f"README walk-through on production: {time.monotonic() - started:.1f}s")
