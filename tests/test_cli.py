"""The cockpit command end to end: real processes, real routers, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.local_fixtures import live_marked

PLAN = """
[service]
name = "{service}"

[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0", "1.2.0"]
    port = {port}

[strategy.canary]
steps = [
  {{ set_weight = 20 }},
  {{ pause = {{}} }},
  {{ analysis = {{ checks = ["ok"] }} }},
]

[[analysis.checks]]
name = "ok"
metric = "success-rate"
success = ">= 95"
interval = "1s"
count = 2
"""


def cockpit(*args: str, state: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COCKPIT_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def write_plan(tmp_path: Path, service: str, port: int = 0) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN.format(service=service, port=port))
    return path


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def service(request: pytest.FixtureRequest) -> str:
    import uuid

    name = f"c{uuid.uuid4().hex[:8]}"
    yield name
    deadline = time.monotonic() + 10
    while live_marked(name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_marked(name) == [], "processes left behind"


def test_check_good_and_bad(tmp_path: Path, service: str) -> None:
    plan = write_plan(tmp_path, service)
    ok = cockpit("check", str(plan), state=tmp_path)
    assert ok.returncode == 0 and "ok" in ok.stdout.splitlines()[0] and "1. set weight 20%" in ok.stdout
    missing = cockpit("check", str(tmp_path / "nope.toml"), state=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(plan.read_text().replace('adapter = "local"', 'adapter = "nomad"'))
    result = cockpit("check", str(bad), state=tmp_path)
    assert result.returncode == 2
    assert f"{bad}:9: environments[0].backend.adapter: unknown backend adapter 'nomad'" in result.stderr


def test_unknown_version_is_refused_with_exit_2(tmp_path: Path, service: str) -> None:
    plan = write_plan(tmp_path, service)
    result = cockpit("rollout", str(plan), "--env", "dev", "--version", "9.9.9", "--headless", state=tmp_path)
    assert result.returncode == 2
    assert (
        one_line_error(result)
        == "error: rollout refused: version 9.9.9 does not exist (known: 1.0.0, 1.1.0, 1.2.0)"
    )
    history = cockpit("history", "--json", "--service", service, state=tmp_path)
    refused = [json.loads(line) for line in history.stdout.splitlines() if '"refused"' in line]
    assert refused and refused[0]["action"] == "rollout"


def test_port_in_use_is_a_clear_error_and_disturbs_nothing(tmp_path: Path, service: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        plan = write_plan(tmp_path, service, port)
        result = cockpit(
            "rollout", str(plan), "--env", "dev", "--version", "1.1.0", "--headless", state=tmp_path
        )
        assert result.returncode == 2
        line = one_line_error(result)
        assert f"port {port} on 127.0.0.1 is already in use" in line
        # The port's owner still accepts connections: nothing was disturbed.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


def test_unknown_environment(tmp_path: Path, service: str) -> None:
    plan = write_plan(tmp_path, service)
    result = cockpit(
        "rollout", str(plan), "--env", "prod", "--version", "1.1.0", "--headless", state=tmp_path
    )
    assert result.returncode == 2
    assert "no environment 'prod'" in one_line_error(result)


def test_headless_demo_good_release_promotes_within_60s(tmp_path: Path) -> None:
    started = time.monotonic()
    result = cockpit(
        # Production's pause waits for a person (the demo plan): headless, --auto-promote is that person.
        "demo", "--headless", "--env", "production", "--version", "1.1.0", "--auto-promote", "--port-base", "0",
        state=tmp_path,
    )
    took = time.monotonic() - started
    print(f"headless demo 1.1.0: exit {result.returncode} in {took:.1f}s")
    assert result.returncode == 0, result.stdout + result.stderr
    assert took < 60
    lines = result.stdout.splitlines()
    assert lines[-1] == "promoted: 1.1.0 serves 100% of production"
    assert any("step 2/5: analysis" in line for line in lines)
    history = cockpit("history", "--demo", "--json", state=tmp_path)
    records = [json.loads(line) for line in history.stdout.splitlines()]
    rollout = next(r for r in records if r["action"] == "rollout" and r["outcome"] != "started")
    assert rollout["outcome"] == "ok" and rollout["user"] and rollout["reason"] == "headless demo rollout"


def test_headless_demo_bad_release_is_aborted_by_analysis_within_30s(tmp_path: Path) -> None:
    started = time.monotonic()
    result = cockpit(
        "demo", "--headless", "--env", "production", "--version", "1.2.0", "--port-base", "0", state=tmp_path
    )
    took = time.monotonic() - started
    print(f"headless demo 1.2.0: exit {result.returncode} in {took:.1f}s")
    assert result.returncode == 3, result.stdout + result.stderr
    assert took < 30
    assert result.stdout.splitlines()[-1].startswith("aborted: analysis failed: ")


def test_status_attaches_read_only_to_a_running_rollout(tmp_path: Path, service: str) -> None:
    plan = write_plan(tmp_path, service)
    env = {**os.environ, "COCKPIT_STATE_DIR": str(tmp_path)}
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cockpit",
            "rollout",
            str(plan),
            "--env",
            "dev",
            "--version",
            "1.1.0",
            "--headless",
            # Held at the indefinite pause (without it the run stops there at once, exit 4).
            "--pause-timeout",
            "10m",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        row: dict = {}
        while time.monotonic() < deadline:
            status = cockpit("status", str(plan), "--json", state=tmp_path)
            assert status.returncode == 0, status.stderr
            row = json.loads(status.stdout)["environments"][0]
            if row["phase"] == "Paused" and row["canary_weight"] == 20:
                break
            time.sleep(0.3)
        assert row["phase"] == "Paused", row
        assert (row["name"], row["stable_version"], row["canary_version"]) == ("dev", "1.0.0", "1.1.0")
        assert httpx.get(row["url"] + "/healthz", timeout=5).status_code == 200
    finally:
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=30)
    assert runner.returncode == 130, err
    assert "interrupted: dev left Paused" in err


def test_status_needs_a_plan_or_demo(tmp_path: Path) -> None:
    result = cockpit("status", state=tmp_path)
    assert (
        result.returncode == 2
        and one_line_error(result) == "error: name a PLAN, or --demo for the embedded demo"
    )
    demo = cockpit("status", "--demo", "--json", state=tmp_path)
    assert demo.returncode == 0, demo.stderr
    rows = json.loads(demo.stdout)["environments"]
    assert [r["name"] for r in rows] == ["dev", "staging", "production"]
    assert all(r["url"] is None and r["stable_version"] == "1.0.0" for r in rows)  # nothing runs


def test_status_of_a_plan_that_is_not_running(tmp_path: Path, service: str) -> None:
    plan = write_plan(tmp_path, service)
    result = cockpit("status", str(plan), "--json", state=tmp_path)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["environments"][0]
    assert row["url"] is None and row["error"] and row["stable_version"] == "1.0.0"


def test_check_refuses_special_files_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    # timeout: a check that opened the FIFO for reading would wait for a writer forever.
    result = cockpit("check", str(fifo), state=tmp_path, timeout=20)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{fifo}: (plan): is a named pipe (FIFO), expected a regular .toml plan file" in result.stderr
    zero = cockpit("check", "/dev/zero", state=tmp_path, timeout=20)
    assert zero.returncode == 2 and "is a character device" in zero.stderr
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("rollout", "P", "--env", "dev", "--version", "1.1.0", "--timeout", "nan"), "'--timeout': expected a finite"),
        (("rollout", "P", "--env", "dev", "--version", "1.1.0", "--timeout", "inf"), "'--timeout': expected a finite"),
        (("rollout", "P", "--env", "dev", "--version", "1.1.0", "--timeout", "0"), "greater than 0, found '0'"),
        (("rollout", "P", "--env", "dev", "--version", "1.1.0", "--timeout", "soon"), "a number of seconds"),
        (("rollout", "P", "--env", "dev"), "Missing option '--version'"),
        (("history", "--limit", "0"), "'--limit': 0 is not in the range"),
        (("history", "--limit", "many"), "'--limit'"),
        (("demo", "--port-base", "70000"), "'--port-base': 70000 is not in the range"),
        (("demo", "--port-base", "-1"), "'--port-base'"),
        (("check",), "Missing argument 'PLAN'"),
        (("check", "P", "extra"), "unexpected extra argument (extra)"),
        (("nosuch",), "No such command 'nosuch'"),
        (("--bogus",), "No such option '--bogus'"),
        (("secrets", "set"), "Missing argument 'SERVICE/NAME'"),
    ],
)
def test_bad_arguments_end_in_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    plan = write_plan(tmp_path, "badargs")
    result = cockpit(*[str(plan) if a == "P" else a for a in args], state=tmp_path, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no usage block
    line = one_line_error(result)
    assert expected in line and "--help'" in line


def test_state_dir_is_created_private_and_a_path_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "fresh" / "state"
    result = cockpit("history", "--state-dir", str(state), state=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (state.stat().st_mode & 0o777) == 0o700
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args in (("history", "--state-dir", str(afile / "x")), ("status", "--demo", "--state-dir", str(afile))):
        bad = cockpit(*args, state=tmp_path)
        assert bad.returncode == 2
        line = one_line_error(bad)
        assert args[-1] in line and ("is a file" in line or "a part of that path is a file" in line), line
    env_bad = cockpit("history", state=afile / "x")  # COCKPIT_STATE_DIR under a file
    assert env_bad.returncode == 2 and "a part of that path is a file" in one_line_error(env_bad)


SYSTEM_PYTHON = "/usr/bin/python3.11"


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path(SYSTEM_PYTHON).exists() or not shutil.which("setpriv"),
    reason="needs root to run the cockpit as another user (nobody)",
)
def test_privileged_port_as_a_normal_user_is_a_clear_error() -> None:
    import site
    import tempfile

    import cockpit as package

    state = Path(tempfile.mkdtemp(prefix="cockpit-nobody-"))
    try:
        state.chmod(0o777)
        source = str(Path(package.__file__).parent.parent)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(state), "COCKPIT_STATE_DIR": str(state / "s")}
        env["PYTHONPATH"] = os.pathsep.join([source, *site.getsitepackages()])
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON, "-m", "cockpit",
             "demo", "--headless", "--env", "dev", "--version", "1.1.0", "--port-base", "1"],
            capture_output=True, text=True, timeout=60, env=env, cwd=state,
        )  # fmt: skip
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert result.returncode == 2, result.stderr
    assert "port 1 on 127.0.0.1 is not allowed for this user" in one_line_error(result)


# ----------------------------------------------------------------------------- issue 8: 3 a.m.


def test_headless_at_an_indefinite_pause_exits_4_naming_it_instead_of_waiting(
    tmp_path: Path, service: str
) -> None:
    """PLAN's step 2 is `pause = {}`: nobody can promote a headless run, so it must not wait
    (the default --timeout is 30 minutes; this bound is far below it)."""
    plan = write_plan(tmp_path, service)
    result = cockpit("rollout", str(plan), "--env", "dev", "--version", "1.1.0", "--headless", state=tmp_path, timeout=90)
    assert result.returncode == 4, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("paused: dev stopped at step 2/3, an indefinite pause that waits for a promote"), last
    assert "--auto-promote" in last and "--pause-timeout DURATION" in last
    assert "Traceback" not in result.stderr


def test_headless_pause_timeout_promotes_after_the_wait(tmp_path: Path, service: str) -> None:
    plan = write_plan(tmp_path, service)
    result = cockpit(
        "rollout", str(plan), "--env", "dev", "--version", "1.1.0", "--headless", "--pause-timeout", "500ms",
        state=tmp_path, timeout=120,
    )  # fmt: skip
    out = result.stdout
    assert "paused at step 2/3: promoting in 0.5s (--pause-timeout)" in out, out + result.stderr
    assert "promoted past the pause; step 3/3" in out
    # Nobody sends traffic to this plan's service: its analysis is inconclusive, and with no
    # human that is an abort to stable (3), decided after the pause was waited out.
    assert result.returncode == 3, out + result.stderr
    assert out.index("promoting in 0.5s") < out.index("analysis inconclusive")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("demo", "--auto-promote"), "--auto-promote is for --headless runs only"),
        (("demo", "--pause-timeout", "1m"), "--pause-timeout is for --headless runs only"),
        (("rollout", "P", "--env", "dev", "--version", "1.1.0", "--auto-promote"), "--auto-promote is for --headless"),
        (("rollout", "P", "--env", "dev", "--version", "1.1.0", "--pause-timeout", "30s"), "--pause-timeout is for"),
        (
            ("rollout", "P", "--env", "dev", "--version", "1.1.0", "--headless", "--auto-promote", "--pause-timeout", "1s"),
            "contradict each other",
        ),
        (("demo", "--headless", "--version", "1.1.0", "--pause-timeout", "soon"), "'--pause-timeout': expected a duration"),
        (("demo", "--headless", "--version", "1.1.0", "--pause-timeout", "0s"), "greater than 0"),
        (("demo", "--headless", "--version"), "--headless needs --version"),
        (("--log-level", "LOUD", "adapters"), "'--log-level'"),
    ],
)
def test_headless_flags_without_headless_are_refused(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    plan = write_plan(tmp_path, "flags")
    result = cockpit(*[str(plan) if a == "P" else a for a in args], state=tmp_path, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in one_line_error(result)
    assert not (tmp_path / "demo").exists()  # refused before anything was opened


@pytest.mark.parametrize(
    "args",
    [("demo",), ("open", "P"), ("rollout", "P", "--env", "dev", "--version", "1.1.0")],
    ids=["demo", "open", "rollout"],
)
def test_the_full_screen_without_a_terminal_is_refused_not_hung(tmp_path: Path, args: tuple[str, ...]) -> None:
    """As in CI: stdin and stdout are pipes. The screen would wait for keys nobody sends."""
    plan = write_plan(tmp_path, "notty")
    result = cockpit(*[str(plan) if a == "P" else a for a in args], state=tmp_path, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line_error(result)
    assert "the cockpit screen needs a terminal, but stdin and stdout are not one" in line
    assert "--headless" in line


def test_version_of_the_cockpit_and_of_the_demo(tmp_path: Path) -> None:
    from cockpit import __version__

    top = cockpit("--version", state=tmp_path, timeout=30)
    assert (top.returncode, top.stdout) == (0, f"cockpit, version {__version__}\n"), top.stderr
    demo = cockpit("demo", "--version", state=tmp_path, timeout=30)
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.splitlines() == [
        f"cockpit, version {__version__}",
        "demo releases: 1.0.0, 1.1.0, 1.2.0 (1.0.0 runs everywhere at start)",
        "roll one out: cockpit demo --version 1.1.0 (add --headless --env E for CI)",
    ]
    assert not (tmp_path / "demo").exists()  # nothing was started


SECRET = "s3cr3t-Value-4-the-log-test"


def test_log_file_is_private_has_records_and_never_a_secret(tmp_path: Path, service: str) -> None:
    plan = write_plan(tmp_path, service)
    text = plan.read_text().replace(
        "    port = 0\n", '    port = 0\n    secret_env = { DB_PASSWORD = "db" }\n'
    ) + '\n[secrets]\ndb = "env:COCKPIT_TEST_LOG_SECRET"\n'
    plan.write_text(text)
    log = tmp_path / "cockpit.log"
    env = {**os.environ, "COCKPIT_STATE_DIR": str(tmp_path), "COCKPIT_TEST_LOG_SECRET": SECRET}
    result = subprocess.run(
        [sys.executable, "-m", "cockpit", "--log", str(log), "--log-level", "debug",
         "rollout", str(plan), "--env", "dev", "--version", "1.2.0", "--headless", "--auto-promote"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert log.stat().st_mode & 0o777 == 0o600
    written = log.read_text()
    assert f"headless rollout of 1.2.0 to dev ended with exit code {result.returncode}" in written
    assert " DEBUG " in written  # --log-level debug reached the file
    assert SECRET not in written


def test_log_records_are_redacted_and_the_file_made_private(tmp_path: Path) -> None:
    """In-process: a record that carries a resolved secret (message, argument, traceback)
    is masked; an existing world-readable file becomes 0600; a symlink is refused."""
    import logging

    from cockpit import debuglog, secrets

    os.environ["COCKPIT_TEST_LOG_SECRET2"] = SECRET + "2"
    try:
        value = secrets.resolve("env:COCKPIT_TEST_LOG_SECRET2")
        path = tmp_path / "open.log"
        path.write_text("")
        path.chmod(0o644)
        handler = debuglog.configure(path, "INFO")
        try:
            logger = logging.getLogger("cockpit.test")
            logger.info("connecting with %s", value)
            logger.debug("below the level: %s", "not written")
            try:
                raise RuntimeError(f"refused: {value}")
            except RuntimeError:
                logger.exception("failed")
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
        written = path.read_text()
        assert path.stat().st_mode & 0o777 == 0o600
        assert value not in written and written.count(secrets.MASK) == 2, written  # message, exception
        assert "not written" not in written
        link = tmp_path / "link.log"
        link.symlink_to(path)
        with pytest.raises(debuglog.LogFileError, match="cannot write the log"):
            debuglog.configure(link)
    finally:
        del os.environ["COCKPIT_TEST_LOG_SECRET2"]
