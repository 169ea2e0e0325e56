"""Secrets against the real Secret Service (gnome-keyring on a private D-Bus)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from cockpit import secrets
from cockpit.engine.journal import Journal


def cockpit(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_set_then_resolve_through_the_real_keyring(real_keyring: None) -> None:
    name = f"db-{uuid.uuid4().hex[:8]}"
    value = f"s3cr3t-{uuid.uuid4().hex}"
    result = cockpit("secrets", "set", f"cockpit-test/{name}", stdin=value + "\n")
    assert result.returncode == 0, result.stderr
    assert value not in result.stdout + result.stderr
    assert secrets.resolve(f"keyring:cockpit-test/{name}") == value


def test_missing_keyring_secret_says_how_to_store_it(real_keyring: None) -> None:
    with pytest.raises(
        secrets.SecretError, match=r"is missing: store it with 'cockpit secrets set shop/nope-"
    ):
        secrets.resolve(f"keyring:shop/nope-{uuid.uuid4().hex[:6]}")


def test_no_keyring_available_is_a_clear_error() -> None:
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    result = cockpit("secrets", "set", "shop/x", stdin="value\n", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: no OS keyring is available (start a Secret Service such as gnome-keyring)"
    )
    assert "Traceback" not in result.stderr


def test_env_reference_and_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_TEST_TOKEN", "tok-123456")
    assert secrets.resolve("env:COCKPIT_TEST_TOKEN") == "tok-123456"
    with pytest.raises(secrets.SecretError, match="environment variable COCKPIT_NOPE is not set"):
        secrets.resolve("env:COCKPIT_NOPE")


def test_resolved_values_never_reach_the_journal(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_TEST_PW", "pa55word-xyz")
    value = secrets.resolve("env:COCKPIT_TEST_PW")
    journal = Journal(tmp_path / "j.sqlite3")
    journal.append(
        service="s",
        env="e",
        action="deploy",
        outcome="failed",
        user="u",
        detail=f"connect failed: postgres://app:{value}@db/app",
        reason=f"pw {value}",
    )
    (record,) = journal.records()
    assert value not in record.detail and value not in record.reason
    assert secrets.MASK in record.detail
    journal.close()
