"""Secrets against the real Secret Service: gnome-keyring on a private D-Bus session bus,
started by scripts/servers.sh (scripts/test.sh). Skipped without it, failing in CI."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cockpit import secrets
from cockpit.engine.session import Session
from cockpit.plan import parse_plan
from tests.secret_fixtures import PtyRun, cockpit, register_token_adapters, token_plan

pytestmark = pytest.mark.keyring
register_token_adapters()


@pytest.fixture
def secret_service(real_keyring: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process on the Secret Service backend, a private index of names, and a keyring
    service name of its own (the keyring outlives the test); its entries are deleted after."""
    import keyring
    from keyring.backends import SecretService

    monkeypatch.setenv("COCKPIT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    before = keyring.get_keyring()
    backend = SecretService.Keyring()
    keyring.set_keyring(backend)
    service = f"cockpit-test-{uuid.uuid4().hex[:8]}"
    try:
        yield service
    finally:
        for item in backend.get_preferred_collection().search_items({"service": service}):
            item.delete()
        keyring.set_keyring(before)


def local_plan(path: Path, service: str) -> Path:
    """A plan on the real local backend whose replicas get a keyring secret in DATABASE_URL
    (a subprocess knows only the installed adapters)."""
    path.write_text(
        f"""
[service]
name = "orders"
[secrets]
database-url = "keyring:{service}/database-url"
[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    command = ["{{python}}", "-m", "cockpit.demo.service", "--version", "{{version}}", "--port", "{{port}}"]
    versions = ["1.0.0"]
    secret_env = {{ DATABASE_URL = "database-url" }}
[strategy.canary]
steps = [{{ set_weight = 20 }}]
"""
    )
    return path


def unique(prefix: str = "s3cr3t") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def test_set_get_list_delete_through_the_secret_service(secret_service: str) -> None:
    import keyring

    ref, value = f"{secret_service}/deploy-token", unique()
    stored = cockpit("secrets", "set", ref, stdin=value + "\n")
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.splitlines()[0] == f"stored keyring:{ref}"
    assert value not in stored.stdout + stored.stderr
    assert keyring.get_password(secret_service, "deploy-token") == value  # really in gnome-keyring

    got = cockpit("secrets", "get", ref)
    assert (got.returncode, got.stdout) == (0, value + "\n")
    listed = cockpit("secrets", "list")
    assert (listed.returncode, listed.stdout) == (0, f"keyring:{ref}\n")

    assert cockpit("secrets", "delete", ref).stdout == f"deleted keyring:{ref}\n"
    assert keyring.get_password(secret_service, "deploy-token") is None
    assert cockpit("secrets", "delete", ref).stdout == f"keyring:{ref} was not in the keyring; nothing deleted\n"
    gone = cockpit("secrets", "get", ref)
    assert gone.returncode == 1 and "is not in the keyring" in gone.stderr
    assert cockpit("secrets", "list").stdout.startswith("no secrets stored")


def test_a_value_typed_at_the_prompt_lands_in_the_secret_service(secret_service: str) -> None:
    import keyring

    value = unique("typed")
    session = PtyRun("secrets", "set", f"{secret_service}/typed")
    session.expect("value (not shown): ")
    session.send(value + "\n")
    session.expect("again: ")
    session.send(value + "\n")
    assert session.finish() == 0, session.text()
    assert value not in session.text()
    assert keyring.get_password(secret_service, "typed") == value


def test_check_resolves_a_plans_keyring_references(secret_service: str, tmp_path: Path) -> None:
    plan = local_plan(tmp_path / "plan.toml", secret_service)
    missing = cockpit("secrets", "check", str(plan))
    assert missing.returncode == 1
    assert f"store it with 'cockpit secrets set {secret_service}/database-url'" in missing.stdout
    value = unique()
    assert cockpit("secrets", "set", f"{secret_service}/database-url", stdin=value).returncode == 0
    ok = cockpit("secrets", "check", str(plan))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines() == [
        f"ok       [secrets] database-url = keyring:{secret_service}/database-url",
        "ok       environments[0].backend.options.secret_env.DATABASE_URL -> database-url"
        f" (keyring:{secret_service}/database-url)",
        "2 reference(s), 0 missing",
    ]
    assert value not in ok.stdout + ok.stderr


def test_a_session_resolves_a_keyring_reference_for_its_adapter(secret_service: str, tmp_path: Path) -> None:
    import keyring

    value = unique()
    keyring.set_password(secret_service, "deploy", value)
    plan = parse_plan(
        token_plan(f'deploy-token = "keyring:{secret_service}/deploy"', backend_options='token = "deploy-token"')
    )

    async def run() -> None:
        session = Session(plan, state_dir=tmp_path / "state", user="ann")
        try:
            assert await session.start() == []
            assert session.warnings == []
            backend = session.controller("production").backend
            assert backend.ctx.secrets is not None
            assert backend.ctx.secrets(backend.options.token) == value  # the adapter's way in
            assert secrets.redact(f"401 for Bearer {value}") == f"401 for Bearer {secrets.MASK}"
            details = " ".join(r.detail for r in session.journal.records(service=plan.service.name))
            assert value not in details
        finally:
            await session.close()

    asyncio.run(run())


def test_a_missing_keyring_secret_warns_at_start_naming_the_reference(secret_service: str, tmp_path: Path) -> None:
    plan = parse_plan(token_plan(f'deploy-token = "keyring:{secret_service}/absent"'))

    async def run() -> None:
        session = Session(plan, state_dir=tmp_path / "state", user="ann")
        try:
            assert await session.start() == []
            assert len(session.warnings) == 1
            assert f"keyring:{secret_service}/absent is missing: store it with" in session.warnings[0]
        finally:
            await session.close()

    asyncio.run(run())


def test_without_the_session_bus_the_fix_it_message_names_the_backend_and_the_cause(
    secret_service: str, tmp_path: Path
) -> None:
    plan = local_plan(tmp_path / "plan.toml", secret_service)
    for args in (("secrets", "set", f"{secret_service}/x"), ("secrets", "get", f"{secret_service}/x"),
                 ("secrets", "check", str(plan))):
        result = cockpit(*args, stdin="value-1234\n", drop=("DBUS_SESSION_BUS_ADDRESS",))
        assert result.returncode == 1, args
        assert "no usable OS keyring: keyring chose fail.Keyring because there is no D-Bus session bus" in result.stderr
        assert "apt-get install gnome-keyring dbus-x11" in result.stderr and "env:NAME" in result.stderr
        assert "Traceback" not in result.stderr
    chosen = cockpit(
        "secrets", "get", f"{secret_service}/x", env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    )
    assert chosen.returncode == 1
    assert "keyring chose fail.Keyring because PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring" in chosen.stderr
