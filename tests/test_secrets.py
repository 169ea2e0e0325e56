"""Secret references, the keyring wrappers and their fix-it message, the references a plan
makes, and redaction of every value however it was obtained. No real keyring needed: the
keyring here is a file (tests/secret_fixtures.py); tests/test_secrets_keyring.py runs
against the real Secret Service."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.errors import InitError, KeyringError, KeyringLocked

from cockpit import debuglog, secrets
from cockpit.engine.journal import Journal
from cockpit.engine.session import Session
from cockpit.plan import parse_plan
from cockpit.secrets_plan import Reference, check_references, plan_references
from tests.secret_fixtures import (  # noqa: F401 - the fixture is used by name
    FileKeyring,
    file_keyring_fixture,
    register_token_adapters,
    token_plan,
)

register_token_adapters()


def unique(prefix: str = "s3cr3t") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@pytest.fixture
def use_backend():
    """Select a keyring backend for this process for one test."""
    import keyring

    before = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(before)


# ----------------------------------------------------------------------------- references


def test_env_reference_and_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_TEST_TOKEN", "tok-123456")
    assert secrets.resolve("env:COCKPIT_TEST_TOKEN") == "tok-123456"
    with pytest.raises(secrets.SecretError, match="environment variable COCKPIT_NOPE is not set"):
        secrets.resolve("env:COCKPIT_NOPE")


def test_keyring_reference_resolves_and_a_missing_one_says_how_to_store_it(file_keyring: FileKeyring) -> None:
    value = unique()
    file_keyring.set_password("shop", "deploy", value)
    assert secrets.resolve("keyring:shop/deploy") == value
    with pytest.raises(secrets.SecretError, match=r"is missing: store it with 'cockpit secrets set shop/nope'"):
        secrets.resolve("keyring:shop/nope")


@pytest.mark.parametrize("ref", ["keyring:shop", "keyring:/x", "keyring:shop/", "vault:x", "plain-value-1"])
def test_malformed_references_are_refused_without_echoing_a_value(ref: str) -> None:
    with pytest.raises(secrets.SecretError) as caught:
        secrets.resolve(ref)
    assert "keyring:" in str(caught.value)


# ----------------------------------------------------------------------------- no usable keyring


@pytest.mark.parametrize("backend", [fail.Keyring, null.Keyring])
def test_a_backend_that_stores_nothing_gives_the_fix_it_message(use_backend, backend: type) -> None:
    use_backend(backend())
    for attempt in (
        lambda: secrets.resolve("keyring:shop/deploy"),
        lambda: secrets.keyring_get("shop", "deploy"),
        lambda: secrets.keyring_set("shop", "deploy", unique()),
        lambda: secrets.keyring_delete("shop", "deploy"),
        secrets.require_keyring,
    ):
        with pytest.raises(secrets.KeyringUnavailable) as caught:
            attempt()
        message = str(caught.value)
        assert f"keyring chose {backend.__module__.removeprefix('keyring.backends.')}.Keyring" in message
        assert "apt-get install gnome-keyring dbus-x11" in message
        assert "D-Bus session" in message and "unlock" in message and "env:NAME" in message


def test_the_fix_it_message_says_why_the_secret_service_is_not_there(
    use_backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_backend(fail.Keyring())
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(secrets.KeyringUnavailable, match="DBUS_SESSION_BUS_ADDRESS is not set"):
        secrets.require_keyring()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/cockpit-bus")
    with pytest.raises(secrets.KeyringUnavailable, match="cannot be reached on the session bus unix:path=/nonex"):
        secrets.require_keyring()


class BrokenKeyring(KeyringBackend):
    """A backend failing the way real ones do; its error text carries the value it was given."""

    priority = 1  # type: ignore[assignment]
    error: type[Exception] = KeyringError

    def get_password(self, service: str, username: str) -> str | None:
        raise self.error(f"cannot read {service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.error(f"rejected password {password}")

    def delete_password(self, service: str, username: str) -> None:
        raise self.error("no")


def test_keyring_failures_are_secret_errors_that_never_carry_the_value(use_backend) -> None:
    use_backend(BrokenKeyring())
    value = unique()
    with pytest.raises(secrets.SecretError) as caught:
        secrets.keyring_set("shop", "deploy", value)
    assert value not in str(caught.value)
    assert str(caught.value) == "cannot store shop/deploy: the keyring (tests.test_secrets.BrokenKeyring) failed with KeyringError"
    BrokenKeyring.error = KeyringLocked
    try:
        with pytest.raises(secrets.SecretError, match="is locked; unlock it"):
            secrets.resolve("keyring:shop/deploy")
        # A session bus whose Secret Service cannot open a keyring (no desktop to prompt).
        BrokenKeyring.error = InitError
        with pytest.raises(secrets.KeyringUnavailable) as caught:
            secrets.resolve("keyring:shop/deploy")
        assert "keyring chose tests.test_secrets.BrokenKeyring because it could not open a keyring" in str(caught.value)
        assert "apt-get install gnome-keyring dbus-x11" in str(caught.value)
    finally:
        BrokenKeyring.error = KeyringError


# ----------------------------------------------------------------------------- a plan's references


def test_plan_references_cover_the_table_options_templates_and_references_in_place() -> None:
    plan = parse_plan(
        token_plan(
            'deploy-token = "keyring:shop/deploy"\nprom-token = "env:PROM_TOKEN"\nunused = "env:UNUSED"',
            backend_options='token = "deploy-token"\n'
            'headers = { Authorization = "Bearer {secret:deploy-token}", X-Other = "{secret:nowhere}",'
            ' X-Env = "env:DIRECT_TOKEN", Accept = "application/json" }\n'
            'idempotency_header = "X-Request-Token"',
            metrics_options='bearer_token_secret = "prom-token"',
        )
    )
    found = {(r.where, r.name, r.ref) for r in plan_references(plan)}
    opts = "environments[0].backend.options"
    assert found == {
        ("[secrets] deploy-token", "deploy-token", "keyring:shop/deploy"),
        ("[secrets] prom-token", "prom-token", "env:PROM_TOKEN"),
        ("[secrets] unused", "unused", "env:UNUSED"),
        (f"{opts}.token", "deploy-token", "keyring:shop/deploy"),
        (f"{opts}.headers.Authorization", "deploy-token", "keyring:shop/deploy"),
        (f"{opts}.headers.X-Other", "nowhere", None),
        (f"{opts}.headers.X-Env", None, "env:DIRECT_TOKEN"),
        ("environments[0].metrics.options.bearer_token_secret", "prom-token", "env:PROM_TOKEN"),
    }


def test_secret_env_tables_of_the_local_backend_name_secrets() -> None:
    plan = parse_plan(
        """
[service]
name = "orders"
[secrets]
db = "env:ORDERS_DB"
[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    command = ["{python}", "-m", "cockpit.demo.service", "--port", "{port}"]
    versions = ["1.0.0"]
    secret_env = { DATABASE_URL = "db" }
    env = { MODE = "token-free" }
[strategy.canary]
steps = [{ set_weight = 20 }]
"""
    )
    refs = [r for r in plan_references(plan) if not r.where.startswith("[secrets]")]
    assert [(r.where, r.name, r.ref) for r in refs] == [
        ("environments[0].backend.options.secret_env.DATABASE_URL", "db", "env:ORDERS_DB")
    ]


def test_check_resolves_each_reference_once_and_reports_the_missing_ones(
    monkeypatch: pytest.MonkeyPatch, use_backend
) -> None:
    value = unique()
    monkeypatch.setenv("COCKPIT_T_OK", value)
    monkeypatch.delenv("COCKPIT_T_GONE", raising=False)
    use_backend(fail.Keyring())
    refs = [
        Reference("[secrets] a", "a", "env:COCKPIT_T_OK"),
        Reference("opt.token", "a", "env:COCKPIT_T_OK"),
        Reference("opt.other", None, "env:COCKPIT_T_GONE"),
        Reference("opt.x", "undefined", None),
        Reference("[secrets] k", "k", "keyring:shop/k"),
    ]
    results, unavailable = check_references(refs)
    problems = [r.problem for r in results]
    assert problems[:2] == [None, None]
    assert "COCKPIT_T_GONE is not set" in str(problems[2])
    assert problems[3] == "[secrets] does not define 'undefined'"
    assert "no usable OS keyring" in str(problems[4])
    assert unavailable is not None and "keyring chose fail.Keyring" in unavailable
    assert all(value not in str(p) for p in problems)


# ----------------------------------------------------------------------------- redaction, every path


def assert_masked_everywhere(value: str, tmp_path: Path) -> None:
    """``value`` is masked in text, in the debug log and in the journal."""
    assert secrets.redact(f"before {value} after") == f"before {secrets.MASK} after"
    log_file = tmp_path / f"log-{uuid.uuid4().hex[:6]}.txt"
    root_level = logging.getLogger().level
    handler = debuglog.configure(log_file, "INFO")
    try:
        logging.getLogger("cockpit.test").warning("connect failed with %s", value)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
        handler.close()
    logged = log_file.read_text()
    assert value not in logged and secrets.MASK in logged
    journal = Journal(tmp_path / f"j-{uuid.uuid4().hex[:6]}.sqlite3")
    try:
        journal.append(service="s", env="e", action="deploy", outcome="failed", user="u", detail=f"x {value}")
        (record,) = journal.records()
        assert value not in record.detail and secrets.MASK in record.detail
    finally:
        journal.close()


def test_redact_masks_an_env_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = unique()
    monkeypatch.setenv("COCKPIT_T_REDACT", value)
    secrets.resolve("env:COCKPIT_T_REDACT")
    assert_masked_everywhere(value, tmp_path)


def test_redact_masks_a_keyring_reference(tmp_path: Path, file_keyring: FileKeyring) -> None:
    value = unique()
    file_keyring.set_password("shop", "redact", value)  # behind the cockpit's back: not remembered yet
    assert secrets.redact(value) == value
    secrets.resolve("keyring:shop/redact")
    assert_masked_everywhere(value, tmp_path)


def test_redact_masks_a_value_read_or_stored_through_the_wrappers(tmp_path: Path, file_keyring: FileKeyring) -> None:
    read, stored = unique("read"), unique("stored")
    file_keyring.set_password("shop", "read", read)
    assert secrets.keyring_get("shop", "read") == read
    secrets.keyring_set("shop", "stored", stored)
    for value in (read, stored):
        assert_masked_everywhere(value, tmp_path)


def test_redact_masks_a_value_stored_even_when_the_keyring_refuses_it(tmp_path: Path, use_backend) -> None:
    value = unique()
    use_backend(fail.Keyring())
    with pytest.raises(secrets.KeyringUnavailable):
        secrets.keyring_set("shop", "x", value)
    assert_masked_everywhere(value, tmp_path)


def test_redact_masks_values_a_session_resolves_for_an_adapter(
    tmp_path: Path, file_keyring: FileKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_start, on_demand = unique("start"), unique("demand")
    file_keyring.set_password("shop", "deploy", at_start)
    monkeypatch.setenv("COCKPIT_T_DEMAND", on_demand)
    plan = parse_plan(token_plan('deploy-token = "keyring:shop/deploy"', backend_options='token = "deploy-token"'))

    async def run() -> None:
        session = Session(plan, state_dir=tmp_path / "state", user="ann")
        try:
            assert await session.start() == []  # resolves [secrets] up front
            assert_masked_everywhere(at_start, tmp_path)
            backend = session.controller("production").backend
            assert backend.ctx.secrets is not None
            # A name not in [secrets] is a reference itself (AdapterContext.secrets).
            assert backend.ctx.secrets("env:COCKPIT_T_DEMAND") == on_demand
            assert_masked_everywhere(on_demand, tmp_path)
        finally:
            await session.close()

    asyncio.run(run())


def test_short_values_are_not_remembered_so_ordinary_words_survive() -> None:
    secrets.remember("abc")
    assert secrets.redact("abc def") == "abc def"
