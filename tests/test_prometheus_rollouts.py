"""Rollouts gated by a real Prometheus (issue 9, item 5 and its "must show"): the demo's
replicas run by the local backend, its users (cockpit/demo/load.py) sending traffic, the
``prometheus`` metrics source publishing the replicas by file SD, and Prometheus scraping
them every second and answering the analysis' PromQL.

The Prometheus is the demo's own (cockpit/demo/prometheus.py, the code under test for
``cockpit demo --prometheus``), started once for this module rather than the suite's
shared one: these tests kill it and start it again mid-analysis, which would break any
other module querying a shared server at that moment.

Timings on a 1 s scrape: new targets become queryable some seconds after they appear, so
the checks here measure every 2 s (a rate window must cover at least two scrapes) and
tolerate a few no-data windows at the start (the plan's default no_data_limit).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cockpit import cli
from cockpit.cli import demo_plan
from cockpit.demo.load import DEMO_TRAFFIC
from cockpit.demo.prometheus import DemoPrometheus, PrometheusError, find_binary
from cockpit.demo.session import DemoSession
from cockpit.engine.commands import StartRollout
from cockpit.engine.state import Activity, AnalysisView, Cause, CheckView, Outcome, Phase
from cockpit.plan.models import Plan
from cockpit.ui.app import CockpitApp
from cockpit.ui.config import UIConfig
from cockpit.ui.widgets.metrics import MetricsPanel
from tests.local_fixtures import service_fixture  # noqa: F401
from tests.prometheus_fixtures import IN_CI, instant

pytestmark = pytest.mark.prometheus

INTERVAL = 2.0  # seconds between measurements (two 1 s scrapes per rate window)
CHECKS = ["success-rate", "latency-p99"]
BOUND = 60.0
WARM_UP = 5.0  # seconds between the canary taking traffic and its analysis (see the abort test)  # a generous ceiling for any one wait here; the code must end things sooner


def have_prometheus() -> bool:
    try:
        find_binary()
    except Exception:
        return False
    return True


if not have_prometheus():
    if IN_CI:
        pytest.fail("CI needs Debian's prometheus (scripts/setup.sh --test installs it)", pytrace=False)
    pytest.skip("the prometheus binary is not installed (apt-get install prometheus)", allow_module_level=True)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPrometheus]:
    server = DemoPrometheus(tmp_path_factory.mktemp("prom") / "home")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.release()


def gated_demo(
    service: str,
    server: DemoPrometheus,
    *,
    count: int = 3,
    error_limit: int = 4,
    no_data_limit: int = 6,
    warm_up: float = 0.0,
) -> Plan:
    """The Prometheus demo plan cut to production, half the traffic on the canary, then
    (after a ``warm_up`` pause, if any) an analysis of the plan's success-rate and
    latency-p99 every ``INTERVAL``; promoted after. Up to 6 no-data windows are tolerated:
    Prometheus may take 6 s to start scraping a new canary (see the abort test)."""
    data = demo_plan(0, "prometheus", server).model_dump()
    data["service"]["name"] = service
    (prod,) = [e for e in data["environments"] if e["name"] == "production"]
    prod.update(protected=False, strategy=None)
    # Its own discovery file: targets of an earlier test's service are not this one's.
    prod["metrics"]["options"]["file_sd"] = str(server.sd_dir / f"{service}.json")
    data["environments"] = [prod]
    pause = [{"pause": {"duration": warm_up}}] if warm_up else []
    data["strategy"] = {"canary": {"steps": [{"set_weight": 50}, *pause, {"analysis": {"checks": CHECKS}}]}}
    for check in data["analysis"]["checks"]:
        check.update(interval=INTERVAL, count=count, error_limit=error_limit, no_data_limit=no_data_limit)
    return Plan.model_validate(data)


class Watch:
    """When production's canary took traffic, started analysing and was aborted (monotonic)."""

    def __init__(self, session: DemoSession) -> None:
        self.session = session
        self.weighted: float | None = None  # the regression's start: the canary takes traffic
        self.analysis_started: float | None = None
        self.aborted: float | None = None
        session.add_change_listener(self.changed)

    def changed(self) -> None:
        state = self.session.controller("production").state
        now = time.monotonic()
        if state.weight > 0 and state.canary_version and self.weighted is None:
            self.weighted = now
        if state.activity is Activity.ANALYSING and self.analysis_started is None:
            self.analysis_started = now
        if state.phase is Phase.ABORTED and self.aborted is None:
            self.aborted = now


async def until(predicate: Callable[[], bool], what: str, timeout: float = BOUND) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:g} s: {what}")
        await asyncio.sleep(0.05)


async def started(plan: Plan, state_dir: Path, **traffic: object) -> DemoSession:
    session = DemoSession(plan, state_dir=state_dir, user="t", **traffic)  # type: ignore[arg-type]
    assert await session.start() == []
    return session


async def users_arrived(session: DemoSession) -> None:
    await until(lambda: "production" in session.traffic.running, "the demo's users on production")


def analysis(session: DemoSession) -> AnalysisView | None:
    return session.view("production").rollout.analysis


def every_check(session: DemoSession, holds: Callable[[CheckView], bool]) -> bool:
    """The production analysis has its checks and each one satisfies ``holds``; an
    analysis that ended before that fails the test at once (not after a long wait)."""
    a = analysis(session)
    if a is not None and a.outcome is not Outcome.RUNNING:
        raise AssertionError(f"the analysis ended early: {a.outcome} {a.message}")
    return a is not None and bool(a.checks) and all(holds(c) for c in a.checks)


def settled(session: DemoSession) -> bool:
    """The rollout no longer walks (promoted, aborted or paused) and nothing is under way."""
    state = session.controller("production").state
    return state.phase is not Phase.PROGRESSING and state.activity is Activity.IDLE


@pytest.mark.asyncio
async def test_a_good_release_passes_the_prometheus_gates_and_is_promoted(
    tmp_path: Path, service: str, prometheus: DemoPrometheus
) -> None:
    session = await started(gated_demo(service, prometheus), tmp_path)
    try:
        await users_arrived(session)
        began = time.monotonic()
        result = await session.submit("production", StartRollout("1.1.0"))
        assert result.ok, result.message
        first_value: list[float] = []

        def promoted() -> bool:
            a = analysis(session)
            if not first_value and a and any(m.value is not None for c in a.checks for m in c.measurements):
                first_value.append(time.monotonic() - began)
            return settled(session)

        await until(promoted, "the rollout of 1.1.0 ended")
        state = session.controller("production").state
        a = state.analysis
        assert (state.phase, state.stable_version, state.canary_version) == (Phase.HEALTHY, "1.1.0", None), (
            state,
            a,
        )
        assert a is not None and a.outcome is Outcome.SUCCESSFUL, a
        for check in a.checks:
            assert check.taken == check.count == 3 and check.failed == 0
            # The PromQL sent for the canary: the generic preset, selected by the SD labels.
            assert f'service="{service}",env="production",track="canary"' in check.query, check.query
            values = [m.value for m in check.measurements if m.value is not None]
            assert len(values) == 3, check
        (success,) = [c for c in a.checks if c.name == "success-rate"]
        assert all(m.value is not None and m.value >= 95 for m in success.measurements if m.value is not None)
        # The values were Prometheus' answers: the plan's only source, and the canary's series
        # are there under the labels the file SD gave them (over the last minute: the canary's
        # target is gone since the promotion).
        assert session.controller("production").metrics.name == "prometheus"  # type: ignore[union-attr]
        canary = await asyncio.to_thread(
            instant,
            prometheus.url,
            f'count_over_time(http_requests_total{{service="{service}",env="production",track="canary",version="1.1.0"}}[1m])',
        )
        assert canary, "the canary's requests are in Prometheus under its labels"
        print(f"\n1.1.0: first canary value from Prometheus {first_value[0]:.1f} s after the rollout started")
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_regression_fails_the_gates_and_is_aborted_within_the_bound(
    tmp_path: Path, service: str, prometheus: DemoPrometheus
) -> None:
    # Prometheus 2.42 hands new targets to its scrapers at most every 5 s: a canary's series
    # are queryable 1.5-6 s after it takes traffic. The bound is the analysis' own, so the
    # analysis starts once Prometheus can know the canary (a warm-up pause, as real plans
    # have); the time from the regression's start is printed too (and benchmarked).
    session = await started(gated_demo(service, prometheus, warm_up=WARM_UP), tmp_path)
    try:
        watch = Watch(session)
        await users_arrived(session)
        result = await session.submit("production", StartRollout("1.2.0"))
        assert result.ok, result.message
        await until(lambda: watch.aborted is not None, "the abort of 1.2.0", timeout=30)
        state = session.controller("production").state
        assert (state.phase, state.cause, state.stable_version) == (Phase.ABORTED, Cause.ANALYSIS_FAILED, "1.0.0")
        a = state.analysis
        assert a is not None and a.outcome is Outcome.FAILED, a
        assert any(c.outcome is Outcome.FAILED and c.failed == 1 for c in a.checks), a
        assert watch.analysis_started is not None and watch.aborted is not None
        took = watch.aborted - watch.analysis_started
        assert all(c.interval == INTERVAL for c in a.checks)
        bound = INTERVAL * (0 + 1) + 5.0  # interval × (failure_limit + 1) + 5 s
        assert watch.weighted is not None
        print(
            f"\n1.2.0: aborted {took:.2f} s after the analysis started (bound {bound:g} s),"
            f" {watch.aborted - watch.weighted:.2f} s after the canary took traffic"
        )
        assert took <= bound, f"aborted {took:.2f} s after the analysis started; the bound is {bound:g} s"
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_canary_without_traffic_ends_inconclusive_not_successful(
    tmp_path: Path, service: str, prometheus: DemoPrometheus
) -> None:
    # One no-data window tolerated: the verdict, not the wait, matters here.
    session = await started(gated_demo(service, prometheus, no_data_limit=1), tmp_path, traffic={})
    try:
        result = await session.submit("production", StartRollout("1.1.0"))
        assert result.ok, result.message
        await until(lambda: settled(session), "the analysis of a canary nobody calls ended")
        a = analysis(session)
        assert a is not None and a.outcome is Outcome.INCONCLUSIVE, a
        assert all(c.taken == 0 and c.no_data > 0 for c in a.checks), a
        assert "no data" in a.message
        state = session.controller("production").state
        assert state.phase is Phase.PAUSED and state.stable_version == "1.0.0", state
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_prometheus_down_mid_analysis_gives_counted_retried_errors_then_recovery(
    tmp_path: Path, service: str, prometheus: DemoPrometheus
) -> None:
    # A restarted Prometheus needs a few seconds (discovery, two scrapes) before a rate has
    # data again: those windows are no data, not errors, and must not end the run here.
    plan = gated_demo(service, prometheus, count=4, error_limit=20, no_data_limit=12)
    session = await started(plan, tmp_path)
    try:
        await users_arrived(session)
        result = await session.submit("production", StartRollout("1.1.0"))
        assert result.ok, result.message
        await until(lambda: every_check(session, lambda c: c.taken >= 1), "a first measurement of each check")
        prometheus.kill()
        try:
            await until(
                lambda: every_check(session, lambda c: c.errors >= 2), "two errors per check while Prometheus is down"
            )
            down = session.view("production")
            # The live metrics say so too, and when they are tried again.
            assert down.metrics_error and "unreachable" in down.metrics_error, down.metrics_error
            assert down.metrics_retry_at is not None
            a = down.rollout.analysis
            assert a is not None and a.outcome is Outcome.RUNNING, "errors are retried, not a verdict"
            for check in a.checks:
                errors = [m for m in check.measurements if m.outcome is Outcome.ERROR]
                assert len(errors) >= 2, check
                assert all(m.value is None and "unreachable" in m.message for m in errors), check
        finally:
            prometheus.start(fresh=False)  # same port, same data: the server came back
        await until(lambda: settled(session), "the rollout ended")
        state = session.controller("production").state
        a = state.analysis
        assert a is not None and a.outcome is Outcome.SUCCESSFUL, a
        for check in a.checks:
            assert check.errors >= 2 and check.taken == check.count == 4, check
            assert check.measurements[-1].outcome is Outcome.SUCCESSFUL, check
        assert (state.phase, state.stable_version) == (Phase.HEALTHY, "1.1.0"), state
        await until(lambda: session.view("production").metrics_error is None, "the live metrics recover")
    finally:
        if not prometheus.running:
            prometheus.start(fresh=False)
        await session.close()


# --------------------------------------------------------------------------- the command


def cockpit(*args: str, state: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "COCKPIT_STATE_DIR": str(state), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args], capture_output=True, text=True, timeout=timeout, env=environ
    )


def prometheus_processes_under(path: Path) -> list[int]:
    """Live Prometheus processes whose command line names ``path`` (the demo's state)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and argv and argv[0].endswith(b"prometheus") and str(path).encode() in b" ".join(argv):
            found.append(int(entry.name))
    return found


def test_the_prometheus_demo_aborts_1_2_0_on_prometheus_figures_and_stops_its_server(tmp_path: Path) -> None:
    started_at = time.monotonic()
    result = cockpit(
        "demo", "--prometheus", "--headless", "--env", "production", "--version", "1.2.0", "--port-base", "0",
        state=tmp_path,
    )  # fmt: skip
    took = time.monotonic() - started_at
    print(f"\ncockpit demo --prometheus 1.2.0: exit {result.returncode} in {took:.1f} s")
    assert result.returncode == 3, result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    # The verdict quotes the number Prometheus answered (the plan has no other source).
    assert last.startswith("aborted: analysis failed: "), last
    assert any(unit in last for unit in ("% (needs", "ms (needs")), last
    home = tmp_path / "demo-prometheus" / "run" / "prometheus"
    assert (home / "prometheus.yml").is_file() and (home / "sd" / "production.json").is_file()
    assert prometheus_processes_under(tmp_path) == [], "the demo's Prometheus outlived the demo"


def test_the_prometheus_demo_without_the_binary_says_what_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = cockpit(
        "demo", "--prometheus", "--headless", "--version", "1.1.0", state=tmp_path, env={"PATH": str(empty)}
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "prometheus binary" in line and "install Debian's prometheus package" in line, line


def test_the_prometheus_demo_runs_the_local_backend_only(tmp_path: Path) -> None:
    result = cockpit("demo", "--prometheus", "--backend", "docker", "--headless", "--version", "1.1.0", state=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--prometheus runs the local demo" in result.stderr


def test_the_launcher_puts_the_plan_on_its_server(tmp_path: Path) -> None:
    server = DemoPrometheus(tmp_path / "p", port=9999)
    plan = demo_plan(0, "prometheus", server)
    for env in plan.environments:
        assert env.metrics.source == "prometheus"
        assert env.metrics.options["url"] == "http://127.0.0.1:9999"
        assert env.metrics.options["file_sd"] == str(tmp_path / "p" / "sd" / f"{env.name}.json")
    # The direct scrape stays the default demo.
    assert {e.metrics.source for e in demo_plan(0).environments} == {"scrape"}
    assert DEMO_TRAFFIC.keys() == {e.name for e in plan.environments}


def test_a_prometheus_that_cannot_start_is_a_clear_error_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = DemoPrometheus(tmp_path / "p", port=taken.getsockname()[1])
        with pytest.raises(PrometheusError, match=r"exited .* before it was ready") as caught:
            server.start()
    assert "address already in use" in str(caught.value), caught.value
    assert not server.running


def test_the_demo_command_stops_its_prometheus_when_the_run_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process, so only the command's own stop can end the server (the death signal a
    child gets when the cockpit exits would hide a missing one in a subprocess test)."""
    seen: dict[str, object] = {}

    def run(plan: Plan, *args: object, **kwargs: object) -> int:
        url = plan.environments[0].metrics.options["url"]
        seen["ready"] = instant(url, "vector(1)")
        seen["running"] = prometheus_processes_under(tmp_path)
        return 0

    monkeypatch.setattr(cli, "run_headless", run)
    result = CliRunner().invoke(
        cli.cli, ["demo", "--prometheus", "--headless", "--version", "1.1.0", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert seen["ready"] and len(seen["running"]) == 1  # type: ignore[arg-type]
    assert prometheus_processes_under(tmp_path) == []


def test_the_demo_without_the_client_library_names_the_extra_and_starts_no_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_api_client", None)  # as if not installed
    result = CliRunner().invoke(
        cli.cli, ["demo", "--prometheus", "--headless", "--version", "1.1.0", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 1, result.output
    assert "pip install 'cockpit[prometheus]'" in result.output
    assert prometheus_processes_under(tmp_path) == []


@pytest.mark.asyncio
async def test_the_screen_shows_the_rates_prometheus_answers(
    tmp_path: Path, service: str, prometheus: DemoPrometheus
) -> None:
    """The cockpit on the Prometheus demo plan (dev, its 10 users/s): the card's req/s is
    Prometheus' answer, read through Pilot."""
    data = demo_plan(0, "prometheus", prometheus).model_dump()
    data["service"]["name"] = service
    (dev,) = [e for e in data["environments"] if e["name"] == "dev"]
    dev["metrics"]["options"]["file_sd"] = str(prometheus.sd_dir / f"{service}.json")
    data["environments"] = [dev]
    session = DemoSession(Plan.model_validate(data), state_dir=tmp_path, user="t")
    try:
        app = CockpitApp(session, config=UIConfig())
        async with app.run_test(size=(160, 48)) as pilot:

            def stable_rate() -> float | None:
                screen = app.main_screen
                panels = list(screen.query(MetricsPanel)) if screen is not None else []
                shown = re.search(r"req/s +stable (\d+\.\d)/s", panels[0].render().plain) if panels else None
                return float(shown.group(1)) if shown else None

            # dev's users send 10 requests/s; the first windows cover their ramp-up.
            deadline = time.monotonic() + 30
            while not 5 <= (stable_rate() or 0) <= 15:
                assert time.monotonic() < deadline, f"the screen shows {stable_rate()} req/s after 30 s, not ~10/s"
                await pilot.pause(0.1)
            rate = stable_rate()
            assert type(session.controller("dev").metrics).__name__ == "PrometheusMetricsSource"
            print(f"\nthe screen shows dev's stable at {rate}/s, from Prometheus")
    finally:
        await session.close()  # the app leaves a session it was given to its owner


def test_a_second_demo_on_the_same_state_dir_is_refused_and_loses_nothing(tmp_path: Path) -> None:
    first = DemoPrometheus(tmp_path / "p")
    first.start()
    try:
        (first.sd_dir / "dev.json").write_text("[]")
        second = DemoPrometheus(tmp_path / "p")
        with pytest.raises(PrometheusError, match="another cockpit demo --prometheus is running"):
            second.start()
        assert not second.running
        assert (first.sd_dir / "dev.json").read_text() == "[]" and any(first.data_dir.iterdir())
        assert instant(first.url, "vector(1)")
    finally:
        first.stop()
        first.release()
    second.start()  # once the first is gone, the directory is free again
    second.stop()
    second.release()
