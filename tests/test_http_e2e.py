"""The http backend end to end: the engine (Session) drives the deploy-API test service
(tests/deploy_api, a real HTTP server with real state) through the shipped example plan
cockpit/plan/examples/http-platform.toml.

The example has one environment per driver mode - staging: the cockpit walks the steps and
calls the platform's actions; production: the platform walks them, the cockpit mirrors it
and forwards commands - so every flow here runs in both modes by choosing the environment.
Only what a test environment must change is changed: the base URL, the token's reference
(``env:`` here; the real keyring in the test marked for it), the service name (one app per
test on the shared server), short timeouts and a quick strategy.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from cockpit import paths
from cockpit.engine.commands import Abort, Pause, Promote, Resume, Rollback, StartRollout
from cockpit.engine.drivers import MirrorDriver
from cockpit.engine.session import Session
from cockpit.engine.state import Activity, Cause, Phase
from cockpit.plan import parse_plan
from tests.deploy_api.fixtures import DeployApi, deploy_api_fixture, deploy_api_server_fixture  # noqa: F401

pytestmark = pytest.mark.deploy_api

EXAMPLE = Path(str(resources.files("cockpit.plan").joinpath("examples", "http-platform.toml")))
REPO = Path(__file__).resolve().parent.parent
TOKEN_VAR = "COCKPIT_TEST_DEPLOY_TOKEN"
# Quick steps with both kinds of pause: the timed one passes on its own (the cockpit's timer
# in staging, the platform's in production), the untimed one waits for a person's promote.
STEPS = '{ set_weight = 20 }, { pause = { duration = "1s" } }, { pause = {} }, { set_weight = 50 }'
MODES = [pytest.param("staging", id="cockpit-walks"), pytest.param("production", id="platform-walks")]
REASON = "e2e test"


def plan_text(
    api: DeployApi, secret_ref: str = f"env:{TOKEN_VAR}", timeout: float = 5.0, steps: str = STEPS
) -> str:
    """The shipped example, pointed at the test server with a test's settings."""
    text = EXAMPLE.read_text()
    text = text.replace('name = "shop"', f'name = "{api.app}"', 1)
    text = text.replace("https://deploy.example.com", api.url)
    text = text.replace('"keyring:shop/deploy-token"', f'"{secret_ref}"')
    text = re.sub(r"(?m)^(\s*)timeout = 10\b.*$", rf"\g<1>timeout = {timeout}\n\g<1>backoff = 0.05", text)
    text = re.sub(r"(?m)^(\s*)ready_timeout = 120\b.*$", r"\g<1>ready_timeout = 3", text)
    text = re.sub(r"(?m)^(\s*)interval = 1\.0$", r"\g<1>interval = 0.2", text)  # the log poll
    head, _, _ = text.partition("[strategy.canary]")
    return head + f"[strategy.canary]\nsteps = [{steps}]\n"


@pytest.fixture
def token(deploy_api: DeployApi, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_VAR, deploy_api.token)
    return deploy_api.token


@pytest_asyncio.fixture
async def open_session(tmp_path: Path, deploy_api: DeployApi) -> AsyncIterator[Callable[..., Session]]:
    """Sessions on the example plan for this test's app, closed at the end."""
    opened: list[Session] = []

    def make(**plan: Any) -> Session:
        session = Session(parse_plan(plan_text(deploy_api, **plan)), state_dir=tmp_path / "state", user="ann")
        opened.append(session)
        return session

    yield make
    for session in opened:
        await session.close()


async def until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what or predicate}")
        await asyncio.sleep(0.02)


def mutating(api: DeployApi, env: str) -> list[tuple[str, str]]:
    """The mutating calls the platform received for ``env``: (method, route after the env)."""
    prefix = api.env_path(env)
    return [
        (c["method"], c["path"].removeprefix(prefix))
        for c in api.calls()
        if c["method"] != "GET" and c["path"].startswith(prefix)
    ]


def journal(session: Session, env: str) -> list[tuple[str, str]]:
    records = session.journal.records(service=session.plan.service.name, env=env)
    return [(r.action, r.outcome) for r in records if r.action not in ("initial", "auto", "observed")]


async def paused_at_the_untimed_pause(session: Session, env: str, version: str = "1.1.0") -> None:
    assert await session.start() == []
    result = await session.submit(env, StartRollout(version), REASON)
    assert result.ok, result.message
    state = lambda: session.controller(env).state  # noqa: E731
    await until(
        lambda: (state().phase, state().step_index, state().weight) == (Phase.PAUSED, 2, 20),
        what=f"{env} paused at the untimed pause at 20%",
    )


# --------------------------------------------------------------------------- the flows, both modes


@pytest.mark.asyncio
@pytest.mark.parametrize("env", MODES)
async def test_a_full_canary_through_the_platform_api(
    env: str, deploy_api: DeployApi, token: str, open_session: Callable[..., Session]
) -> None:
    session = open_session()
    controller = session.controller(env)
    assert isinstance(controller.driver, MirrorDriver) == (env == "production")
    await paused_at_the_untimed_pause(session, env)
    on_platform = deploy_api.status(env)
    assert on_platform["canary"] == {"version": "1.1.0", "replicas": 1, "ready": 1}
    assert on_platform["weight"] == 20
    # What the cockpit reads through the plan's JSON paths is what the platform says.
    await until(lambda: controller.view().backend is not None and controller.view().backend.weight == 20)
    seen = controller.view().backend
    assert seen is not None and seen.stable is not None and seen.canary is not None
    assert (seen.stable.version, seen.stable.replicas_desired, seen.stable.replicas_ready) == ("1.0.0", 2, 2)
    assert (seen.canary.version, seen.canary.replicas_desired, seen.canary.replicas_ready) == ("1.1.0", 1, 1)
    assert (await session.submit(env, Promote(), REASON)).ok
    await until(lambda: controller.state.phase is Phase.HEALTHY, what="promoted")
    await until(lambda: controller.state.stable_version == "1.1.0", what="1.1.0 stable")
    after = deploy_api.status(env)
    assert after["stable"]["version"] == "1.1.0" and after["canary"] is None and after["revision"] == 2
    if env == "staging":  # the cockpit walked: it made every traffic move itself
        assert mutating(deploy_api, env) == [
            ("POST", "/canary"),
            ("PUT", "/weight"),
            ("PUT", "/weight"),
            ("PUT", "/weight"),
            ("POST", "/promote"),
        ]
    else:  # the platform walked: the cockpit sent exactly the two things asked of it
        assert mutating(deploy_api, env) == [("POST", "/rollouts"), ("POST", "/rollouts/current/promote")]
    # Every mutating call carried its own idempotency key.
    keys = [c["idempotency_key"] for c in deploy_api.calls() if c["method"] != "GET"]
    assert all(keys) and len(set(keys)) == len(keys)
    assert ("rollout", "started") in journal(session, env)
    # The platform's logs reached the cockpit (polled in staging, server-sent events in production).
    await until(lambda: len(session.logs.buffers[env]) > 0, what="log lines from the platform")


@pytest.mark.asyncio
@pytest.mark.parametrize("env", MODES)
async def test_abort_puts_all_traffic_back_on_stable(
    env: str, deploy_api: DeployApi, token: str, open_session: Callable[..., Session]
) -> None:
    session = open_session()
    controller = session.controller(env)
    await paused_at_the_untimed_pause(session, env)
    assert (await session.submit(env, Abort(), "looks off")).ok
    await until(
        lambda: controller.state.phase is Phase.ABORTED and controller.state.activity is Activity.IDLE,
        what="aborted",
    )
    assert (controller.state.weight, controller.state.canary_version) == (0, None)
    on_platform = deploy_api.status(env)
    assert (on_platform["canary"], on_platform["weight"], on_platform["stable"]["version"]) == (
        None,
        0,
        "1.0.0",
    )
    aborts = [call for call in mutating(deploy_api, env) if call[1].endswith("/abort")]
    assert len(aborts) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("env", MODES)
async def test_rollback_to_the_previous_revision(
    env: str, deploy_api: DeployApi, token: str, open_session: Callable[..., Session]
) -> None:
    session = open_session(steps="{ set_weight = 50 }")
    controller = session.controller(env)
    assert await session.start() == []
    assert (await session.submit(env, StartRollout("1.1.0"), REASON)).ok
    await until(lambda: controller.state.stable_version == "1.1.0", what="1.1.0 promoted")
    await until(
        lambda: controller.state.phase is Phase.HEALTHY and controller.state.revision >= 2, what="revision 2"
    )
    result = await session.submit(env, Rollback(revision=1), REASON)
    assert result.ok, result.message
    await until(lambda: controller.state.stable_version == "1.0.0", what="rolled back")
    await until(lambda: deploy_api.status(env)["stable"]["ready"] == 2, what="the old stable ready again")
    on_platform = deploy_api.status(env)
    assert on_platform["stable"] == {"version": "1.0.0", "replicas": 2, "ready": 2}
    assert on_platform["revision"] == 3
    rollbacks = [call for call in mutating(deploy_api, env) if call[1] == "/rollback"]
    assert rollbacks == [("POST", "/rollback")]


@pytest.mark.asyncio
@pytest.mark.parametrize("env", MODES)
async def test_a_pause_by_hand_holds_a_timed_pause_until_resumed(
    env: str, deploy_api: DeployApi, token: str, open_session: Callable[..., Session]
) -> None:
    session = open_session(steps='{ set_weight = 20 }, { pause = { duration = "2s" } }, { set_weight = 50 }')
    controller = session.controller(env)
    assert await session.start() == []
    assert (await session.submit(env, StartRollout("1.1.0"), REASON)).ok
    await until(
        lambda: (controller.state.step_index, controller.state.weight) == (1, 20), what="in the timed pause"
    )
    result = await session.submit(env, Pause(), REASON)
    assert result.ok, result.message
    await until(lambda: controller.state.paused_by == "ann", what="paused by ann")
    await asyncio.sleep(2.5)  # longer than the pause step: only a resume moves it on now
    assert (controller.state.phase, controller.state.step_index, controller.state.weight) == (
        Phase.PAUSED,
        1,
        20,
    )
    if env == "production":  # the platform itself holds it, by hand
        assert deploy_api.status(env)["rollout"]["pause"] == "user"
    assert (await session.submit(env, Resume(), REASON)).ok
    await until(lambda: controller.state.stable_version == "1.1.0", what="promoted after the resume")
    assert deploy_api.status(env)["stable"]["version"] == "1.1.0"


# --------------------------------------------------------------------------- faults


@pytest.mark.asyncio
async def test_server_errors_are_retried_only_where_idempotent(
    deploy_api: DeployApi, token: str, open_session: Callable[..., Session]
) -> None:
    env = "staging"
    session = open_session()
    controller = session.controller(env)
    # Reads are retried: two 500s on the status do not make the environment look down.
    deploy_api.fault(method="GET", path_suffix=deploy_api.env_path(env) + "/status", status=500, times=2)
    assert await session.start() == []
    # The plan marks the weight PUT idempotent: retried with the same key until it lands.
    deploy_api.fault(method="PUT", path_suffix="/weight", status=500, times=2)
    await paused_at_the_untimed_pause(session, env)
    puts = [c for c in deploy_api.calls() if c["method"] == "PUT"]
    assert [c["status"] for c in puts[:3]] == [500, 500, 200]
    assert len({c["idempotency_key"] for c in puts[:3]}) == 1  # one action, one key
    assert deploy_api.status(env)["weight"] == 20
    assert (await session.submit(env, Abort(), REASON)).ok
    await until(lambda: controller.state.activity is Activity.IDLE, what="aborted")

    # A deploy is not idempotent: one 500 and it is not sent again; the error says so.
    deploy_api.fault(method="POST", path_suffix="/canary", status=500, times=1)
    before = len(deploy_api.calls())
    result = await session.submit(env, StartRollout("1.1.0"), REASON)
    await until(lambda: controller.state.activity is not Activity.DEPLOYING, what="the start settled")
    posts = [
        c for c in deploy_api.calls()[before:] if c["method"] == "POST" and c["path"].endswith("/canary")
    ]
    assert [c["status"] for c in posts] == [500]
    said = result.message + " " + controller.state.reason
    assert "500" in said and "not sent again" in said, said
    assert deploy_api.status(env)["canary"] is None
    assert controller.state.weight == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("env", "suffix"),
    [("staging", "/canary"), ("production", "/rollouts")],
    ids=["cockpit-walks", "platform-walks"],
)
async def test_a_timeout_never_makes_a_double_deploy(
    env: str, suffix: str, deploy_api: DeployApi, token: str, open_session: Callable[..., Session]
) -> None:
    session = open_session(timeout=0.5)
    controller = session.controller(env)
    assert await session.start() == []
    # The platform takes 1.5 s to answer the deploy, then does it anyway.
    deploy_api.fault(method="POST", path_suffix=suffix, delay=1.5, times=1)
    result = await session.submit(env, StartRollout("1.1.0"), REASON)
    deploys = lambda: [c for c in deploy_api.calls() if c["method"] == "POST" and c["path"].endswith(suffix)]  # noqa: E731
    # The delayed deploy lands on the platform after the client gave up on it.
    await until(lambda: deploy_api.status(env)["canary"] is not None, what="the late deploy on the platform")
    await asyncio.sleep(1.0)  # room for any (wrong) resend to arrive
    assert len(deploys()) == 1, deploys()
    assert deploys()[0]["status"] == 202  # answered after the client's timeout
    deployed = [
        line
        for line in deploy_api.api("GET", deploy_api.env_path(env) + "/logs").json()["lines"]
        if line["message"].startswith("deploy d-")
    ]
    assert len(deployed) == 1
    assert not result.ok
    assert (
        "no answer" in result.message
        and "within 0.5s (not sent again: it may still take effect)" in result.message
    )
    if env == "staging":
        # The cockpit stops the rollout without traffic ever reaching the canary, and the
        # canary that landed late shows in the status it polls (a person sees it is there).
        await until(lambda: controller.state.activity is Activity.IDLE, what="the engine settled")
        state = controller.state
        assert (state.phase, state.cause, state.weight) == (Phase.ABORTED, Cause.BACKEND_FAILURE, 0)
        assert "not confirmed and was not sent again" in state.reason
        assert deploy_api.status(env)["weight"] == 0
        await until(
            lambda: (
                (status := controller.view().backend) is not None
                and status.canary is not None
                and status.canary.version == "1.1.0"
            ),
            what="the late canary in the polled status",
        )
    else:
        # The platform got the rollout after all and walks it: the mirror follows it.
        await until(
            lambda: (controller.state.phase, controller.state.weight) == (Phase.PAUSED, 20),
            what="the mirror following the platform's rollout",
        )
        assert controller.state.target_version == "1.1.0"


@pytest.mark.asyncio
@pytest.mark.parametrize("env", MODES)
async def test_a_bad_token_is_a_clear_401_and_nothing_starts(
    env: str, deploy_api: DeployApi, monkeypatch: pytest.MonkeyPatch, open_session: Callable[..., Session]
) -> None:
    wrong = "dk-wrong-" + uuid.uuid4().hex
    monkeypatch.setenv(TOKEN_VAR, wrong)
    session = open_session()
    problems = await session.start(only=[env])
    assert [p.env for p in problems] == [env]
    message = str(problems[0].error)
    assert "401" in message and "'deploy-token'" in message and "cockpit secrets check" in message, message
    assert wrong not in message
    result = await session.submit(env, StartRollout("1.1.0"), REASON)
    assert not result.ok
    assert mutating(deploy_api, env) == []  # nothing was deployed with a rejected credential
    assert {c["status"] for c in deploy_api.calls()} == {401}


@pytest.mark.asyncio
@pytest.mark.parametrize("env", MODES)
async def test_a_token_revoked_mid_rollout_stops_it_safely(
    env: str,
    deploy_api: DeployApi,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    open_session: Callable[..., Session],
) -> None:
    session = open_session()
    controller = session.controller(env)
    await paused_at_the_untimed_pause(session, env)
    monkeypatch.setenv(TOKEN_VAR, "dk-revoked-" + uuid.uuid4().hex)  # resolved again at every request
    result = await session.submit(env, Promote(), REASON)
    assert not result.ok
    assert "401" in result.message and "'deploy-token'" in result.message, result.message
    await asyncio.sleep(1.5)  # a status poll or two with the revoked token
    state = controller.state
    assert (state.phase, state.weight, state.canary_version) == (Phase.PAUSED, 20, "1.1.0"), state
    on_platform = deploy_api.status(env)
    # Traffic stays where it was: stable 1.0.0 with the canary at 20 %, nothing half-done.
    assert (on_platform["stable"]["version"], on_platform["weight"]) == ("1.0.0", 20)
    promotes = [c["status"] for c in deploy_api.calls() if "promote" in c["path"]]
    assert set(promotes) <= {401}  # sent with the revoked token (platform mode) or not at all


# --------------------------------------------------------------------------- the token never shows


def screen_text(svg: str) -> str:
    return re.sub(r"<[^>]+>", "", svg).replace("&#160;", " ")


@pytest.mark.asyncio
async def test_the_token_never_shows_in_logs_journal_errors_or_the_screen(
    deploy_api: DeployApi,
    token: str,
    tmp_path: Path,
    open_session: Callable[..., Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from cockpit.ui.app import CockpitApp
    from cockpit.ui.config import UIConfig

    caplog.set_level("DEBUG")
    session = open_session()
    # A careless platform echoes the Authorization header it got in its error answers.
    deploy_api.fault(method="GET", path_suffix="/status", status=503, times=8, echo_auth=True)
    app = CockpitApp(session, config=UIConfig())
    seen: list[str] = []
    screens: list[str] = []
    async with app.run_test(size=(160, 48)) as pilot:
        # Both environments are down at first, the echoed header in their error...
        await until(lambda: all(v.backend_error for v in session.views()), what="both down")
        await pilot.pause()
        seen += [v.backend_error or "" for v in session.views()]
        screens.append(screen_text(app.export_screenshot()))
        # ...then up, and each rollout's first deploy call is answered with the echo too.
        await until(lambda: app.session_started and all(v.up for v in session.views()), what="both up")
        deploy_api.fault(method="POST", path_suffix="/canary", status=500, times=1, echo_auth=True)
        deploy_api.fault(method="POST", path_suffix="/rollouts", status=400, times=1, echo_auth=True)
        for env in ("staging", "production"):
            result = await session.submit(env, StartRollout("1.1.0"), REASON)
            seen.append(result.message)
            await until(
                lambda env=env: session.controller(env).state.activity is Activity.IDLE, what="settled"
            )
            seen.append(session.controller(env).state.reason)
        await until(lambda: all(len(b) for b in session.logs.buffers.values()), what="log lines of both")
        await pilot.pause()
        screens.append(screen_text(app.export_screenshot()))
    assert len([c for c in deploy_api.calls() if c["fault"] is not None]) == 10, "every echoing fault was hit"
    echoes = [text for text in seen + screens if "request had Authorization" in text]
    assert len(echoes) >= 4, seen  # the platform's words came through (the status errors, the refusals)...
    assert all("Bearer ••••••" in text for text in echoes), echoes  # ...masked
    logs = [line.text for buffer in session.logs.buffers.values() for line in buffer.tail(10_000)]
    await session.close()
    journal_bytes = b"".join(
        p.read_bytes() for p in (tmp_path / "state").glob(paths.journal_path(Path()).name + "*")
    )
    assert journal_bytes
    for where, text in [
        ("errors", "\n".join(seen)),
        ("screen", "\n".join(screens)),
        ("log lines", "\n".join(logs)),
        ("python log", caplog.text),
        ("journal", journal_bytes.decode("utf-8", errors="replace")),
    ]:
        assert token not in text, f"the token shows in the {where}"
    assert token.encode() not in journal_bytes


def test_the_shipped_example_passes_cockpit_check() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cockpit", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{EXAMPLE}: ok")
    assert "staging      http" in result.stdout and "production   http" in result.stdout
    assert "deploy-token -> keyring:shop/deploy-token" in result.stdout


@pytest.mark.asyncio
async def test_the_token_from_the_real_keyring(
    real_keyring: None, deploy_api: DeployApi, open_session: Callable[..., Session]
) -> None:
    import keyring

    name = f"deploy-{uuid.uuid4().hex[:8]}"
    keyring.set_password("cockpit-test", name, deploy_api.token)
    try:
        session = open_session(secret_ref=f"keyring:cockpit-test/{name}")
        assert await session.start(only=["staging"]) == []
        assert session.controller("staging").state.stable_version == "1.0.0"
        assert {c["status"] for c in deploy_api.calls()} == {200}
    finally:
        keyring.delete_password("cockpit-test", name)
