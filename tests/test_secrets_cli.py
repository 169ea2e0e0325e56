"""``cockpit secrets``: through click's CliRunner, and through a real subprocess on a
pseudo-terminal where the terminal matters (no echo, refusing to print to a terminal).
The keyring is a file (tests/secret_fixtures.py); tests/test_secrets_keyring.py repeats the
round trip against the real Secret Service."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from keyring.backends import fail

from cockpit import secrets_index
from cockpit.cli import cli
from cockpit.secrets import MASK, redact
from cockpit.secrets_cli import loggable_argv
from tests.secret_fixtures import (  # noqa: F401 - the fixture is used by name
    FileKeyring,
    PtyRun,
    cockpit,
    file_keyring_fixture,
    register_token_adapters,
    token_plan,
)

register_token_adapters()
FILE_BACKEND = {"PYTHON_KEYRING_BACKEND": "tests.secret_fixtures.FileKeyring"}


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


def unique(prefix: str = "s3cr3t") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def test_set_get_list_delete_round_trip(file_keyring: FileKeyring) -> None:
    value = unique()
    stored = run("secrets", "set", "shop/deploy-token", stdin=value + "\n")
    assert stored.exit_code == 0, stored.output
    assert stored.stdout.splitlines()[0] == "stored keyring:shop/deploy-token"
    assert value not in stored.output
    assert file_keyring.get_password("shop", "deploy-token") == value  # one trailing newline dropped

    got = run("secrets", "get", "shop/deploy-token")  # CliRunner's stdout is not a terminal
    assert (got.exit_code, got.stdout) == (0, value + "\n")

    listed = run("secrets", "list")
    assert (listed.exit_code, listed.stdout) == (0, "keyring:shop/deploy-token\n")

    deleted = run("secrets", "delete", "keyring:shop/deploy-token")  # the plan's spelling works too
    assert (deleted.exit_code, deleted.stdout) == (0, "deleted keyring:shop/deploy-token\n")
    assert file_keyring.get_password("shop", "deploy-token") is None
    again = run("secrets", "delete", "shop/deploy-token")
    assert (again.exit_code, again.stdout) == (0, "keyring:shop/deploy-token was not in the keyring; nothing deleted\n")

    empty = run("secrets", "list")
    assert empty.exit_code == 0 and empty.stdout.startswith("no secrets stored with 'cockpit secrets set' yet")


def test_set_again_replaces_and_keeps_inner_newlines(file_keyring: FileKeyring) -> None:
    assert run("secrets", "set", "shop/key", stdin="first-value\n").exit_code == 0
    pem = "-----BEGIN KEY-----\nabc123\n-----END KEY-----"
    replaced = run("secrets", "set", "shop/key", stdin=pem + "\n")
    assert replaced.stdout.splitlines()[0] == "replaced keyring:shop/key"
    assert file_keyring.get_password("shop", "key") == pem


@pytest.mark.parametrize("extra", [["hunter2-typed-value"], ["--value=hunter2-typed-value"], ["first-part-1", "second-part-2"]])
def test_set_refuses_a_value_given_as_an_argument_and_says_why(file_keyring: FileKeyring, extra: list[str]) -> None:
    result = run("secrets", "set", "shop/deploy", *extra, stdin="piped-value\n")
    assert result.exit_code == 2
    assert "never as an argument" in result.stderr and "shell history" in result.stderr
    assert "nothing stored" in result.stderr
    for arg in extra:
        assert arg not in result.output
        assert redact(arg) == MASK  # it may have been the secret: masked in anything written later
    assert file_keyring.get_password("shop", "deploy") is None


def test_a_value_typed_as_an_argument_never_reaches_the_log(tmp_path: Path, file_keyring: FileKeyring) -> None:
    value = unique("typed")
    log = tmp_path / "cockpit.log"
    result = cockpit("--log", str(log), "secrets", "set", "shop/deploy", value, env=FILE_BACKEND)
    assert result.returncode == 2 and "never as an argument" in result.stderr
    text = log.read_text()
    assert "secrets set shop/deploy <1 argument(s) not logged>" in text
    assert value not in text and value not in result.stdout + result.stderr


def test_loggable_argv_keeps_everything_but_what_follows_the_name() -> None:
    assert loggable_argv(["secrets", "set", "shop/x"]) == ["secrets", "set", "shop/x"]
    assert loggable_argv(["--log", "f", "secrets", "set", "shop/x", "v1", "--v=2"]) == [
        "--log", "f", "secrets", "set", "shop/x", "<2 argument(s) not logged>",
    ]
    assert loggable_argv(["check", "plan.toml"]) == ["check", "plan.toml"]


def test_set_refuses_an_empty_value_and_a_bad_name(file_keyring: FileKeyring) -> None:
    empty = run("secrets", "set", "shop/x", stdin="\n")
    assert (empty.exit_code, empty.stderr) == (2, "error: an empty secret was not stored\n")
    bad = run("secrets", "set", "no-slash", stdin="value-1234\n")
    assert bad.exit_code == 2 and "is not SERVICE/NAME" in bad.stderr
    assert file_keyring.get_password("shop", "x") is None and file_keyring.get_password("no-slash", "") is None


def test_get_of_a_missing_secret_says_how_to_store_it(file_keyring: FileKeyring) -> None:
    result = run("secrets", "get", "shop/nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: keyring:shop/nope is not in the keyring (store it with 'cockpit secrets set shop/nope')\n"
    )


def test_the_index_holds_names_only_privately_and_list_marks_entries_gone(file_keyring: FileKeyring) -> None:
    value = unique()
    run("secrets", "set", "shop/a", stdin=value)
    run("secrets", "set", "shop/b", stdin=unique())
    path = secrets_index.index_path()
    assert json.loads(path.read_text()) == {"names": ["shop/a", "shop/b"]}
    assert value not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    file_keyring.delete_password("shop", "a")  # another tool deleted it
    listed = run("secrets", "list")
    assert listed.stdout == "keyring:shop/a   (no longer in the keyring)\nkeyring:shop/b\n"


def test_a_broken_index_is_reported_and_never_blocks_storing(file_keyring: FileKeyring) -> None:
    path = secrets_index.index_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    listed = run("secrets", "list")
    assert listed.exit_code == 1 and f"the index of secret names {path} cannot be read" in listed.stderr
    stored = run("secrets", "set", "shop/c", stdin="value-1234")
    assert stored.exit_code == 0 and file_keyring.get_password("shop", "c") == "value-1234"
    assert "warning: the index of secret names" in stored.stderr and "will not show this change" in stored.stderr
    assert path.read_text() == "{not json"  # left for the user to look at, not overwritten


# ----------------------------------------------------------------------------- a plan's references


def write_plan(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        token_plan(
            'deploy-token = "keyring:shop/deploy"\nprom-token = "env:COCKPIT_T_PROM"',
            backend_options='token = "deploy-token"\nheaders = { X-Auth = "Token {secret:undefined-one}" }',
            metrics_options='bearer_token_secret = "prom-token"',
        )
    )
    return plan


def test_check_lists_every_reference_and_exits_1_when_one_is_missing(
    tmp_path: Path, file_keyring: FileKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = write_plan(tmp_path)
    token, prom = unique("deploy"), unique("prom")
    file_keyring.set_password("shop", "deploy", token)
    monkeypatch.setenv("COCKPIT_T_PROM", prom)
    result = run("secrets", "check", str(plan))
    assert result.exit_code == 1
    opts = "environments[0].backend.options"
    assert result.stdout.splitlines() == [
        "ok       [secrets] deploy-token = keyring:shop/deploy",
        "ok       [secrets] prom-token = env:COCKPIT_T_PROM",
        f"ok       {opts}.token -> deploy-token (keyring:shop/deploy)",
        f"missing  {opts}.headers.X-Auth -> undefined-one: [secrets] does not define 'undefined-one'",
        "ok       environments[0].metrics.options.bearer_token_secret -> prom-token (env:COCKPIT_T_PROM)",
        "5 reference(s), 1 missing",
    ]
    assert token not in result.output and prom not in result.output


def test_check_passes_when_every_reference_resolves_and_names_what_is_missing(
    tmp_path: Path, file_keyring: FileKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(token_plan('t = "keyring:shop/t"', backend_options='token = "t"'))
    missing = run("secrets", "check", str(plan))
    assert missing.exit_code == 1
    assert "missing  [secrets] t = keyring:shop/t: secret keyring:shop/t is missing: store it with" in missing.stdout
    file_keyring.set_password("shop", "t", unique())
    ok = run("secrets", "check", str(plan))
    assert ok.exit_code == 0 and ok.stdout.endswith("2 reference(s), 0 missing\n")


def test_list_plan_lists_references_without_resolving_them(tmp_path: Path, file_keyring: FileKeyring) -> None:
    result = run("secrets", "list", "--plan", str(write_plan(tmp_path)))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:3] == [
        "[secrets] deploy-token = keyring:shop/deploy",
        "[secrets] prom-token = env:COCKPIT_T_PROM",
        "environments[0].backend.options.token -> deploy-token (keyring:shop/deploy)",
    ]


def test_a_plan_without_secrets_and_a_bad_plan(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(token_plan(""))
    assert run("secrets", "check", str(plan)).stdout == f"{plan} refers to no secrets\n"
    plan.write_text("[service]\n")
    bad = run("secrets", "check", str(plan))
    assert bad.exit_code == 2 and "problem" in bad.stderr


# ----------------------------------------------------------------------------- no usable keyring


def test_every_command_gives_the_fix_it_message_without_a_keyring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    monkeypatch.setenv("COCKPIT_CONFIG_DIR", str(tmp_path / "config"))
    secrets_index.add_name("shop/listed")
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        plan = tmp_path / "plan.toml"
        plan.write_text(token_plan('t = "keyring:shop/t"'))
        results = {
            "set": run("secrets", "set", "shop/x", stdin=""),  # refused before any value is read
            "get": run("secrets", "get", "shop/x"),
            "delete": run("secrets", "delete", "shop/x"),
            "check": run("secrets", "check", str(plan)),
        }
        listed = run("secrets", "list")
    finally:
        keyring.set_keyring(before)
    for command, result in results.items():
        assert result.exit_code == 1, command
        assert result.stderr.count("keyring chose fail.Keyring") == 1, command
        assert "apt-get install gnome-keyring dbus-x11" in result.stderr, command
    assert "missing  [secrets] t = keyring:shop/t: cannot be read: no usable OS keyring" in results["check"].stdout
    assert listed.exit_code == 0 and listed.stdout == "keyring:shop/listed\n"
    assert "note: not checked against the keyring: no usable OS keyring" in listed.stderr


# ----------------------------------------------------------------------------- on a terminal


def test_set_on_a_terminal_prompts_twice_without_echo(tmp_path: Path, file_keyring: FileKeyring) -> None:
    value = unique("typed")
    session = PtyRun("secrets", "set", "shop/typed", env=FILE_BACKEND)
    session.expect("value (not shown): ")
    session.send(value + "\n")
    session.expect("again: ")
    session.send(unique("typo") + "\n")  # a mismatch asks again rather than storing a typo
    session.expect("do not match")
    session.expect("value (not shown): ")
    session.send(value + "\n")
    session.expect("again: ")
    session.send(value + "\n")
    assert session.finish() == 0
    assert "stored keyring:shop/typed" in session.text()
    assert value not in session.text()  # the terminal never echoed it
    assert file_keyring.get_password("shop", "typed") == value


def test_get_refuses_a_terminal_unless_revealed_and_prints_to_a_pipe(file_keyring: FileKeyring) -> None:
    value = unique()
    file_keyring.set_password("shop", "token", value)
    refused = PtyRun("secrets", "get", "shop/token", env=FILE_BACKEND)
    assert refused.finish() == 2
    assert "refusing to print keyring:shop/token on a terminal" in refused.text() and "--reveal" in refused.text()
    assert value not in refused.text()
    revealed = PtyRun("secrets", "get", "--reveal", "shop/token", env=FILE_BACKEND)
    assert revealed.finish() == 0 and revealed.text() == value + "\r\n"
    piped = cockpit("secrets", "get", "shop/token", env=FILE_BACKEND)
    assert (piped.returncode, piped.stdout) == (0, value + "\n")
