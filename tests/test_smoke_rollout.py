"""Smoke steps decide real rollouts (issue 14, item 3): the local backend runs the demo
service behind its router, each smoke check goes through that router on the track it
names, and the answer moves traffic on or aborts the rollout with the check, what it
expected and what came back. One session runs several environments side by side, each
walking its own steps against one scenario, so the processes start once."""

from __future__ import annotations

import asyncio
import sys
import time
from asyncio.subprocess import PIPE, STDOUT
from pathlib import Path

import pytest

from cockpit.engine.commands import StartRollout
from cockpit.engine.session import Session
from cockpit.engine.state import Cause, Phase
from cockpit.headless import EXIT_ANALYSIS, verdict
from cockpit.plan import parse_plan
from tests.local_fixtures import service_fixture  # noqa: F401

ENV = """
[[environments]]
name = "{name}"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0", "1.2.0"]
  [environments.strategy.canary]
  steps = [{{ smoke = {{ checks = {checks} }} }}, {{ set_weight = 50 }}, {{ pause = {{}} }}]
"""

CHECKS = """
# The canary answers / itself at weight 0, with the version the cockpit deployed.
[[smoke]]
name = "home"
path = "/"
body_json_path = "$.version"
expect_value = "{version}"
max_latency = "2s"
attempts = 3
interval = "200ms"

# Stable is asked on its own track: its version, while the canary is beside it.
[[smoke]]
name = "stable-home"
path = "/"
track = "stable"
body_json_path = "$.version"
expect_value = "{version}"

[[smoke]]
name = "healthz"
path = "/healthz"
body_regex = '"status":\\s*"ok".*"version":\\s*"{version}"'

# A release pinned by name: the canary must be 1.1.0, whatever was deployed.
[[smoke]]
name = "is-1-1"
path = "/"
body_json_path = "$.version"
expect_value = "1.1.0"
attempts = 1

# 1.2.0's regression adds 150-400 ms to every checkout; 1.1.0 answers in a few ms.
[[smoke]]
name = "checkout-fast"
path = "/api/checkout"
expect_status = 200
max_latency = "120ms"
attempts = 2
interval = "100ms"

[[smoke]]
name = "checkout-timeout"
path = "/api/checkout"
timeout = "100ms"
attempts = 2
interval = "100ms"

# An endpoint the release does not serve.
[[smoke]]
name = "reports"
path = "/api/reports"
attempts = 1
"""

SCENARIOS = {
    # env: (checks of its smoke step, version rolled out)
    "good": (["home", "stable-home", "healthz", "checkout-fast"], "1.1.0"),
    "body": (["healthz", "is-1-1"], "1.2.0"),
    "slow": (["checkout-fast"], "1.2.0"),
    "hang": (["checkout-timeout"], "1.2.0"),
    "gone": (["reports"], "1.1.0"),
}


def plan_text(service: str, scenarios: dict[str, tuple[list[str], str]]) -> str:
    envs = "".join(
        ENV.format(name=name, checks=str(checks).replace("'", '"')) for name, (checks, _) in scenarios.items()
    )
    return f'[service]\nname = "{service}"\n{envs}\n[strategy.canary]\nsteps = [{{ set_weight = 100 }}]\n{CHECKS}'


async def cockpit(*args: str) -> tuple[int, str]:
    """The CLI in its own process (it attaches to the session's environments read-only)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cockpit", *args, stdout=PIPE, stderr=STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def until(predicate, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in time: {what}")
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_smoke_steps_move_traffic_for_a_good_canary_and_abort_a_bad_one(
    state_dir: Path, service: str
) -> None:
    plan_file = state_dir.parent / "plan.toml"
    plan_file.write_text(plan_text(service, SCENARIOS))
    session = Session(parse_plan(plan_file.read_text()), state_dir=state_dir, user="ann")
    try:
        assert await session.start() == []
        results = await asyncio.gather(
            *(session.submit(env, StartRollout(version)) for env, (_, version) in SCENARIOS.items())
        )
        assert all(r.ok for r in results), [r.message for r in results]

        def settled(env: str) -> bool:
            r = session.view(env).rollout
            return (r.phase is Phase.PAUSED) or (r.phase is Phase.ABORTED and r.canary_version is None)

        await until(lambda: all(settled(env) for env in SCENARIOS), what="every scenario settled")

        # A good canary: every check passed on the track it named, then traffic moved.
        good = session.view("good")
        r = good.rollout
        assert r.phase is Phase.PAUSED and r.weight == 50, r.reason
        assert good.backend is not None and good.backend.weight == 50  # the router agrees
        assert [s.name for s in r.smoke] == ["home", "stable-home", "healthz", "checkout-fast"]
        assert all(s.passed for s in r.smoke), r.smoke
        # The router says which track answered, and the bodies carried the versions the
        # cockpit deployed there: 1.1.0 answered at weight 0, before any user reached it.
        assert [s.served_by for s in r.smoke] == ["canary", "stable", "canary", "canary"]

        # A bad canary: aborted with the typed cause, the check, what it expected and what came.
        expected = {
            "body": ("is-1-1", 'expected $.version == "1.1.0", got "1.2.0"'),
            "slow": ("checkout-fast", "over the limit of 120ms"),
            "hang": ("checkout-timeout", "no complete answer within 100ms (2 attempts"),
            "gone": ("reports", "expected status 200, got 404"),
        }
        for env, (check, words) in expected.items():
            view = session.view(env)
            r = view.rollout
            assert r.phase is Phase.ABORTED and r.cause is Cause.SMOKE_FAILED, (env, r.reason)
            assert r.reason.startswith(f"smoke check {check!r} failed: "), (env, r.reason)
            assert words in r.reason and "on track canary" in r.reason, (env, r.reason)
            # Traffic never moved: the step before any weight aborted, the canary is gone.
            assert view.backend is not None and view.backend.weight == 0 and view.backend.canary is None
            records = session.journal.records(service=service, env=env)
            assert not any(rec.detail.startswith("step 2/3: set weight") for rec in records)
            failed = [rec for rec in records if rec.action == "smoke" and rec.outcome == "failed"]
            assert len(failed) == 1 and words in failed[0].detail, (env, failed)
            code, line = await verdict(session.controller(env), SCENARIOS[env][1])
            assert code == EXIT_ANALYSIS, line  # a verdict on the release, traffic seen back on stable
        # The body scenario's healthz passed before is-1-1 failed: both are on record.
        body = session.view("body").rollout.smoke
        assert [(s.name, s.passed) for s in body] == [("healthz", True), ("is-1-1", False)]
        assert [a.what for a in session.alerts() if a.env == "gone"] == [
            "rollout of 1.1.0 aborted by a smoke check"
        ]

        ok = [
            rec.detail
            for rec in session.journal.records(service=service, env="good")
            if rec.action == "smoke"
        ]
        assert len(ok) == 4 and ok[0].startswith("home: 200 in ") and "on track canary" in ok[0]
    finally:
        await session.close()


BLUE_GREEN = """
[service]
name = "{service}"

[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0", "1.2.0"]

[strategy.blue_green]
pre_promotion_smoke = ["preview-home"]
auto_promote = true

[[smoke]]
name = "preview-home"
path = "/"
body_json_path = "$.version"
expect_value = "1.1.0"
attempts = 1
"""


@pytest.mark.asyncio
async def test_blue_green_checks_the_preview_before_the_switch(state_dir: Path, service: str) -> None:
    plan = parse_plan(BLUE_GREEN.format(service=service))
    assert [s.describe() for s in plan.strategy.steps()] == ["smoke preview-home"]  # then the switch
    session = Session(plan, state_dir=state_dir, user="ann")
    try:
        assert await session.start() == []
        # A bad preview: refused before any user is switched.
        assert (await session.submit("dev", StartRollout("1.2.0"))).ok
        await until(
            lambda: (
                session.view("dev").rollout.canary_version is None
                and session.view("dev").rollout.phase is Phase.ABORTED
            ),
            what="1.2.0 aborted",
        )
        view = session.view("dev")
        assert view.blue_green and view.rollout.cause is Cause.SMOKE_FAILED
        assert 'expected $.version == "1.1.0", got "1.2.0"' in view.rollout.reason
        assert view.backend is not None and view.backend.stable is not None
        assert view.backend.stable.version == "1.0.0" and view.backend.weight == 0
        # A good preview answers the same check and the switch follows.
        assert (await session.submit("dev", StartRollout("1.1.0"))).ok
        await until(
            lambda: (
                session.view("dev").rollout.phase is Phase.HEALTHY
                and session.view("dev").rollout.stable_version == "1.1.0"
            ),
            what="1.1.0 switched",
        )
        (result,) = session.view("dev").rollout.smoke
        assert result.passed and result.served_by == "canary"
    finally:
        await session.close()
