"""Smoke checks (issue 14, item 3): the plan refuses what cannot work, the JSON path reads
one value, the runner judges real answers of the demo service through the real router
(the track header decides who answers, and the answer says who did), the machine turns
the results into moving on or an abort, and the card shows which check failed."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from cockpit import jsonpath
from cockpit.adapters.router.protocol import TRACK_HEADER as ROUTER_TRACK_HEADER
from cockpit.engine import smoke
from cockpit.engine.commands import StartRollout
from cockpit.engine.machine import RolloutMachine, RunSmoke, SetWeight
from cockpit.engine.smoke import Target, judge, run_check, run_checks, same_json, target_for
from cockpit.engine.state import Activity, Cause, Phase, SmokeResult
from cockpit.model import BackendStatus, TrackStatus
from cockpit.plan import PlanError, parse_plan
from cockpit.plan.models import SmokeCheck, SmokeStep, Step
from cockpit.ui.widgets.env_column import EnvColumn
from tests.local_fixtures import Router, service_fixture, start_demo, stop, wait_http  # noqa: F401
from tests.ui_fixtures import make_app, make_session, plan_text, started, wait_for

PLAN = """
[service]
name = "shop"

[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0"]

[strategy.canary]
steps = [{ smoke = { checks = ["home"] } }, { set_weight = 20 }]

[[smoke]]
name = "home"
path = "/"
body_json_path = "$.version"
expect_value = "{version}"
"""


def issues_of(text: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "plan.toml")
    return [str(i) for i in info.value.issues]


# --------------------------------------------------------------------------- the plan


def test_a_smoke_plan_loads_with_its_defaults() -> None:
    plan = parse_plan(PLAN)
    (check,) = plan.smoke
    assert (check.track, check.method, check.expect_status, check.attempts) == ("canary", "GET", 200, 3)
    assert plan.strategy.steps()[0].describe() == "smoke home"
    assert check.describe() == 'GET / on canary: 200, $.version == "{version}"'


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            ('checks = ["home"]', 'checks = ["hom"]'),
            "plan.toml:14: strategy.canary.steps[0].smoke.checks[0]: names smoke check 'hom', which [[smoke]]"
            " does not define (defined: home)",
        ),
        (('"$.version"', '"$.items[*].version"'), "picks several values"),
        (('"$.version"', '"version"'), "a JSON path starts with '$'"),
        (('"$.version"', '"$..version"'), "($..version) picks several values"),
        (
            ('path = "/"', 'path = "/"\nbody_regex = "(unclosed"'),
            "not a valid regular expression (missing ), unterminated subpattern",
        ),
        (('"{version}"', '"{release}"'), "unknown placeholder {release} in expect_value"),
        (('expect_value = "{version}"', ""), "'body_json_path' and 'expect_value' go together"),
        (('path = "/"', 'path = "/"\nmax_latency = "10s"'), "max_latency 10s is longer than timeout 5s"),
        (
            ('path = "/"', 'path = "/"\nmethod = "POST"'),
            "smoke[0].method: Input should be 'GET' or 'HEAD'; found 'POST'",
        ),
        (('path = "/"', 'path = "/"\nmethod = "HEAD"'), "a HEAD request has no body to match"),
        (('path = "/"', 'path = "healthz"'), "smoke[0].path: expected a path such as '/healthz'"),
        (('path = "/"', 'path = "http://x/"'), "the address comes from the backend), found 'http://x/'"),
        (('path = "/"', 'path = "/"\ntrack = "preview"'), "smoke[0].track"),
        (('path = "/"', 'path = "/"\nattempts = 0'), "smoke[0].attempts"),
        (('path = "/"', 'path = "/"\ntimeout = "0s"'), "expected a duration greater than 0"),
        (
            ('path = "/"', 'path = "/"\nbody_regex = "{build}"'),
            "unknown placeholder {build}; a body regex may use",
        ),
    ],
)
def test_bad_smoke_input_is_refused_at_load(change: tuple[str, str], words: str) -> None:
    issues = issues_of(PLAN.replace(*change, 1))
    assert any(words in issue for issue in issues), issues


def test_names_are_checked_everywhere_a_strategy_names_them() -> None:
    twice = PLAN + '\n[[smoke]]\nname = "home"\npath = "/healthz"\n'
    assert any("smoke[1].name: smoke check 'home' is defined twice" in i for i in issues_of(twice))
    blue_green = PLAN.replace(
        '[strategy.canary]\nsteps = [{ smoke = { checks = ["home"] } }, { set_weight = 20 }]',
        '[strategy.blue_green]\npre_promotion_smoke = ["home", "api"]',
    )
    assert any(
        "strategy.blue_green.pre_promotion_smoke[1]: names smoke check 'api', which [[smoke]] does not define"
        in i
        for i in issues_of(blue_green)
    )
    own = PLAN.replace(
        "  [environments.backend]\n",
        '  [environments.strategy.canary]\n  steps = [{ smoke = { checks = ["nope"] } }]\n  [environments.backend]\n',
    )
    assert any(
        "environments[0].strategy.canary.steps[0].smoke.checks[0]: names smoke check 'nope'" in i
        for i in issues_of(own)
    )


def test_a_step_is_one_kind() -> None:
    issue = issues_of(
        PLAN.replace('{ smoke = { checks = ["home"] } }', '{ smoke = { checks = ["home"] }, set_weight = 5 }')
    )
    assert any(
        "exactly one of set_weight, pause, analysis, smoke (found: set_weight, smoke)" in i for i in issue
    )
    assert any("smoke.checks" in i for i in issues_of(PLAN.replace('checks = ["home"]', "checks = []")))


# --------------------------------------------------------------------------- the JSON path


def test_a_json_path_reads_one_value_and_says_what_is_missing() -> None:
    doc = {"a": {"b": [10, {"c": True}]}, "dotted.key": "x"}
    assert jsonpath.parse("$.a.b[0]").find(doc) == 10
    assert jsonpath.parse("$.a.b[-1].c").find(doc) is True
    assert jsonpath.parse('$["dotted.key"]').find(doc) == "x"
    assert jsonpath.parse("$['a']['b'][1]['c']").find(doc) is True
    assert jsonpath.parse("$").find(doc) is doc
    with pytest.raises(jsonpath.Missing, match=r"\$.a has no key 'x'"):
        jsonpath.parse("$.a.x").find(doc)
    with pytest.raises(jsonpath.Missing, match=r"\$.a.b has 2 items, no \[5\]"):
        jsonpath.parse("$.a.b[5]").find(doc)
    with pytest.raises(jsonpath.Missing, match=r"\$.a.b\[0\] is a number, not an object"):
        jsonpath.parse("$.a.b[0].c").find(doc)
    with pytest.raises(jsonpath.Missing, match=r"\$ is a list, not an object"):
        jsonpath.parse("$.a").find([1])
    for bad in ("", "$.", "$[", "$.a b", "$.a[?(@.b)]", "$.a[0:2]", "$.a[*]", "$..a", "$.a[0,1]"):
        with pytest.raises(jsonpath.JsonPathError):
            jsonpath.parse(bad)


def test_json_equality_keeps_booleans_apart_from_numbers() -> None:
    assert same_json(1, 1.0) and same_json("1.1.0", "1.1.0") and same_json(True, True)
    assert not same_json(True, 1) and not same_json(1, True) and not same_json(False, 0)
    assert not same_json("1", 1) and not same_json({"a": 1}, "x")


# --------------------------------------------------------------------------- the runner, for real


def check(**fields: object) -> SmokeCheck:
    fields.setdefault("name", "home")
    fields.setdefault("path", "/")
    return SmokeCheck.model_validate(fields)


def test_the_engine_and_the_router_name_the_same_header() -> None:
    assert smoke.TRACK_HEADER == ROUTER_TRACK_HEADER


def test_a_check_goes_to_the_router_on_its_track_else_to_the_preview() -> None:
    status = BackendStatus(None, None, 0, url="http://router", preview_url="http://preview")
    versions = {"canary": "1.1.0", "stable": "1.0.0"}
    assert target_for(check(), status, versions, "dev") == Target("http://router", True, "1.1.0", "dev")
    assert target_for(check(track="stable"), status, versions, "dev") == Target(
        "http://router", True, "1.0.0", "dev"
    )
    direct = BackendStatus(None, None, 0, preview_url="http://preview")
    assert target_for(check(), direct, versions, "dev") == Target("http://preview", False, "1.1.0", "dev")
    assert target_for(check(track="stable"), direct, versions, "dev") == (
        "the backend reports no URL where the stable track can be reached"
    )
    assert target_for(check(), status, {"canary": None}, "dev") == "no canary is deployed to check"


@pytest.mark.asyncio
async def test_checks_through_the_real_router_reach_the_track_they_name(service: str) -> None:
    router = Router(service)
    ports = [free_port(), free_port(), free_port()]
    stable, canary, slow = (
        start_demo(service, v, p) for v, p in zip(("1.0.0", "1.1.0", "1.2.0"), ports, strict=True)
    )
    try:
        await router.wait_ready()
        for port in ports:
            await wait_http(f"http://127.0.0.1:{port}/healthz")
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        # Weight 0: users all go to stable; only the header reaches the canary.
        await router.table([urls[0]], [urls[1]], weight=0)
        to = Target(router.url, True, "1.1.0", "dev")
        async with httpx.AsyncClient() as client:
            home = await run_check(
                check(body_json_path="$.version", expect_value="{version}", attempts=1), to, client
            )
            assert home.passed and home.served_by == "canary" and home.status == 200, home
            assert home.request == f"GET {router.url}/ on track canary" and home.attempts == 1
            on_stable = await run_check(
                check(track="stable", body_json_path="$.version", expect_value="{version}"),
                Target(router.url, True, "1.0.0", "dev"),
                client,
            )
            assert on_stable.passed and on_stable.served_by == "stable"
            env = await run_check(
                check(body_regex='"env":\\s*"{env}"', attempts=1),
                Target(router.url, True, "1.1.0", "test"),
                client,
            )
            assert env.passed, env

            # No canary in the table: the router falls back to stable, and the check says so
            # even though the body would have passed a check that only looked at it.
            await router.table([urls[0]], [], weight=0)
            fallback = await run_check(check(attempts=1), to, client)
            assert not fallback.passed and fallback.status == 200
            assert fallback.problem == "answered by 'stable', not the canary track", fallback

            # The same router in front of 1.2.0: slow checkouts, over a limit and past a timeout.
            await router.table([urls[0]], [urls[2]], weight=0)
            slow_to = Target(router.url, True, "1.2.0", "dev")
            late = await run_check(
                check(path="/api/checkout", max_latency=0.12, attempts=2, interval=0.05), slow_to, client
            )
            assert not late.passed and late.attempts == 2 and late.latency is not None and late.latency > 0.12
            assert "over the limit of 120ms" in late.problem, late
            gave_up = await run_check(check(path="/api/checkout", timeout=0.1, attempts=1), slow_to, client)
            assert not gave_up.passed and gave_up.status is None
            assert gave_up.problem == "no complete answer within 100ms"
            missing = await run_check(check(path="/api/none", attempts=1), slow_to, client)
            assert missing.problem.startswith("expected status 200, got 404: 404: Not Found"), missing
            wrong = await run_check(
                check(body_json_path="$.service.name", expect_value="demo", attempts=1), slow_to, client
            )
            assert (
                wrong.problem == 'expected $.service.name == "demo", but $.service is a string, not an object'
            )
            not_json = await run_check(
                check(path="/metrics", body_json_path="$.a", expect_value=1, attempts=1), slow_to, client
            )
            assert not_json.problem.startswith("expected a JSON body with $.a == 1, got # HELP"), not_json
    finally:
        stop(stable, canary, slow, router.process)


@pytest.mark.asyncio
async def test_a_preview_is_checked_directly_and_a_dead_address_fails_cleanly(service: str) -> None:
    port = free_port()
    preview = start_demo(service, "1.1.0", port)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz")
        status = BackendStatus(None, TrackStatus("1.1.0", 1, 1), 0, preview_url=f"http://127.0.0.1:{port}")

        async def resolve(c: SmokeCheck) -> Target | str:
            return target_for(c, status, {"canary": "1.1.0", "stable": "1.0.0"}, "dev")

        seen: list[SmokeResult] = []
        results = await run_checks(
            [
                check(body_json_path="$.version", expect_value="{version}"),
                check(name="base", track="stable"),
                check(name="never"),
            ],
            resolve,
            on_result=seen.append,
        )
        # The first passes straight on the preview (no header, no router); the second
        # cannot run at all, and the run stops there.
        assert [(r.name, r.passed) for r in results] == [("home", True), ("base", False)] and seen == list(
            results
        )
        assert results[0].request.endswith(" direct") and results[0].served_by == ""
        assert (
            results[1].problem
            == "cannot run: the backend reports no URL where the stable track can be reached"
        )
    finally:
        stop(preview)
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    async with httpx.AsyncClient() as client:
        dead = await run_check(
            check(attempts=3, interval=0.5),
            Target(f"http://127.0.0.1:{port}", True, "1", "d"),
            client,
            sleep=no_wait,
        )
    assert not dead.passed and dead.attempts == 3 and sleeps == [0.5, 0.5]
    assert dead.problem.startswith("request failed: ConnectError"), dead


def test_every_problem_of_one_answer_is_said() -> None:
    c = check(body_json_path="$.version", expect_value="{version}", body_regex="ok", max_latency=0.1)
    problems = judge(
        c, Target("http://x", True, "1.1.0", "dev"), 503, b'{"version": "1.2.0"}', 0.25, "stable"
    )
    assert problems == [
        "answered by 'stable', not the canary track",
        'expected status 200, got 503: {"version": "1.2.0"}',
        'expected $.version == "1.1.0", got "1.2.0"',
        'expected the body to match /ok/, got {"version": "1.2.0"}',
        "took 250 ms, over the limit of 100ms",
    ]
    # {version} is escaped in a regex: 1.1.0 must not match 1x1y0.
    assert judge(check(body_regex="v{version}"), Target("u", False, "1.1.0", "e"), 200, b"v1x1y0", 0.0, "")
    assert (
        judge(check(body_regex="v{version}"), Target("u", False, "1.1.0", "e"), 200, b"v1.1.0", 0.0, "") == []
    )


def test_a_secret_in_an_answer_never_reaches_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from cockpit import secrets

    monkeypatch.setenv("SMOKE_TEST_TOKEN", "tok-3f9a2c")
    assert secrets.resolve("env:SMOKE_TEST_TOKEN") == "tok-3f9a2c"
    problems = judge(check(), Target("u", True, "1", "e"), 500, b"debug: token=tok-3f9a2c", 0.0, "")
    assert problems == [f"expected status 200, got 500: debug: token={secrets.MASK}"]


# --------------------------------------------------------------------------- the machine


def test_the_machine_runs_a_smoke_step_then_moves_on_or_aborts() -> None:
    m = RolloutMachine([Step(smoke=SmokeStep(checks=["home"])), Step(set_weight=20)])
    deploying = m.start(m.initial("dev", "1.0.0"), "1.1.0", [], 0.0)
    assert deploying.then is not None
    t = m.resume(deploying.state, deploying.then, 0.0)
    assert t is not None and t.effects == (RunSmoke(("home",)),)
    assert t.state.activity is Activity.SMOKE_TESTING and t.state.reason == "step 1/2: smoke home"
    passed = SmokeResult("home", True, "GET http://r/ on track canary", 200, 0.012, "canary", 1)
    moved = m.smoke_finished(t.state, t.then, (passed,), 1.0)  # type: ignore[arg-type]
    assert moved is not None and moved.effects == (SetWeight(20),)
    assert moved.note == "smoke passed: home: 200 in 12 ms from canary; step 2/2: set weight 20%"
    failed = SmokeResult(
        "home", False, "GET http://r/ on track canary", 503, 0.01, "canary", 3, "expected status 200, got 503"
    )
    aborted = m.smoke_finished(t.state, t.then, (failed,), 1.0)  # type: ignore[arg-type]
    assert aborted is not None and aborted.state.phase is Phase.ABORTED
    assert aborted.state.cause is Cause.SMOKE_FAILED and aborted.state.smoke == (failed,)
    assert aborted.state.reason == (
        "smoke check 'home' failed: expected status 200, got 503 (3 attempts: GET http://r/ on track canary)"
    )
    # A report from a run that was aborted or paused meanwhile changes nothing.
    stale = m.pause(t.state, "ann").state
    assert m.smoke_finished(stale, t.then, (failed,), 1.0) is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the card


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.asyncio
async def test_the_card_names_the_failed_smoke_check_and_what_came_back(tmp_path: Path) -> None:
    async def maintenance(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance", headers={smoke.TRACK_HEADER: "canary"})

    server = web.Application()
    server.router.add_get("/{tail:.*}", maintenance)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    text = plan_text(envs=("dev",), protected=()).replace(
        "http://127.0.0.1:18080", f"http://127.0.0.1:{port}"
    )
    text = text.replace(
        "steps = [\n  { set_weight = 20 },",
        'steps = [\n  { smoke = { checks = ["home"] } },\n  { set_weight = 20 },',
    )
    text += '\n[[smoke]]\nname = "home"\npath = "/"\nattempts = 1\n'
    app = make_app(make_session(tmp_path, text))
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: started(app), what="start")
            assert (await app.session.submit("dev", StartRollout("1.1.0"))).ok
            await wait_for(
                pilot, lambda: app.session.view("dev").rollout.phase is Phase.ABORTED, what="abort"
            )
            main = app.main_screen
            assert main is not None
            main.tick(force=True)
            await pilot.pause(0.2)
            column = main.query_one("#env-dev", EnvColumn)
            timeline = str(column.query_one("#timeline").render())
            assert "✗ smoke home" in timeline and "20%" in timeline, timeline
            phase = str(column.query_one("#phase").render())
            assert (
                "smoke check 'home' failed: expected status 200, got 503: down for maintenance"
                in " ".join(phase.split())
            )
    finally:
        await runner.cleanup()
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_the_timeout_bounds_the_whole_answer_not_each_read() -> None:
    # A server that sends a byte every 50 ms: no single read waits long, the answer does.
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(40):
            await response.write(b".")
            await asyncio.sleep(0.05)
        return response

    server = web.Application()
    server.router.add_get("/", trickle)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with httpx.AsyncClient() as client:
            result = await run_check(
                check(timeout=0.3, attempts=1), Target(f"http://127.0.0.1:{port}", False, "1", "e"), client
            )
        # Without the whole-answer deadline the 2 s answer would arrive complete and pass.
        assert result.problem == "no complete answer within 300ms" and not result.passed
    finally:
        await runner.cleanup()


def test_a_platform_that_walks_its_own_steps_is_not_given_smoke_steps() -> None:
    from cockpit.adapters import memory_platform

    memory_platform.register()
    text = PLAN.replace('adapter = "local"', 'adapter = "memory-platform"').replace(
        '    versions = ["1.0.0", "1.1.0"]\n',
        '    versions = ["1.0.0", "1.1.0"]\n  [environments.metrics]\n  source = "memory-platform"\n',
    )
    issues = issues_of(text)
    assert any(
        "environments[0].backend.adapter: the memory-platform backend's platform walks the steps itself"
        " and cannot run smoke checks" in i
        for i in issues
    ), issues


def test_a_pause_stops_a_running_smoke_step_and_a_resume_runs_it_again() -> None:
    m = RolloutMachine([Step(smoke=SmokeStep(checks=["home"])), Step(set_weight=20)])
    deploying = m.start(m.initial("dev", "1.0.0"), "1.1.0", [], 0.0)
    assert deploying.then is not None
    running = m.resume(deploying.state, deploying.then, 0.0)
    assert running is not None and running.then is not None
    held = m.pause(running.state, "ann").state
    assert held.phase is Phase.PAUSED and held.epoch > running.state.epoch  # the running task is dropped
    again = m.unpause(held, 1.0)
    assert again.effects == (RunSmoke(("home",)),) and again.state.activity is Activity.SMOKE_TESTING
    assert again.then is not None and again.then.epoch == again.state.epoch


@pytest.mark.asyncio
async def test_a_plan_built_in_code_naming_an_unknown_check_aborts_instead_of_crashing(
    tmp_path: Path,
) -> None:
    import tomllib

    from cockpit.engine.session import Session
    from cockpit.plan.models import Plan

    text = plan_text(envs=("dev",), protected=()).replace(
        "steps = [\n  { set_weight = 20 },",
        'steps = [\n  { smoke = { checks = ["ghost"] } },\n  { set_weight = 20 },',
    )
    plan = Plan.model_validate(tomllib.loads(text))  # past the loader, which would refuse it
    session = Session(plan, state_dir=tmp_path / "state", user="ann")
    try:
        assert await session.start() == []
        assert (await session.submit("dev", StartRollout("1.1.0"))).ok
        for _ in range(200):
            if session.view("dev").rollout.phase is Phase.ABORTED:
                break
            await asyncio.sleep(0.02)
        r = session.view("dev").rollout
        assert r.phase is Phase.ABORTED and r.cause is Cause.SMOKE_FAILED, r
        assert r.reason.startswith(
            "smoke check 'ghost' failed: the plan defines no [[smoke]] check of this name"
        )
    finally:
        await session.close()
