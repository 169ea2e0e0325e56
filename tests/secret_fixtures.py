"""What the secrets tests share: a keyring backend in a file (for tests that need a
keyring but not the real Secret Service, in this process or a subprocess), adapters whose
options name secrets the way the http backend's and a metrics source's do, and a plan
using them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from pydantic import ConfigDict, Field

from cockpit.adapters import registry
from cockpit.adapters.memory import MemoryBackend, MemoryMetrics

ROOT = Path(__file__).resolve().parent.parent


class FileKeyring(KeyringBackend):
    """Entries in the JSON file named by COCKPIT_TEST_KEYRING_FILE. A subprocess selects it
    with PYTHON_KEYRING_BACKEND=tests.secret_fixtures.FileKeyring."""

    priority = 1  # type: ignore[assignment]

    def _path(self) -> Path:
        return Path(os.environ["COCKPIT_TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._path().read_text()))
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        self._path().write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("not found")
        self._path().write_text(json.dumps(data))


@pytest.fixture(name="file_keyring")
def file_keyring_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FileKeyring]:
    """This process uses a FileKeyring (and so do subprocesses given this env), and a private
    config dir for the index of names."""
    import keyring

    monkeypatch.setenv("COCKPIT_TEST_KEYRING_FILE", str(tmp_path / "keyring.json"))
    monkeypatch.setenv("COCKPIT_CONFIG_DIR", str(tmp_path / "config"))
    before = keyring.get_keyring()
    backend = FileKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(before)


class TokenBackend(MemoryBackend):
    """The memory backend with options naming secrets like the http backend's."""

    class Options(MemoryBackend.Options):
        model_config = ConfigDict(extra="forbid")
        token: str = ""
        headers: dict[str, str] = Field(default_factory=dict)
        idempotency_header: str = "Idempotency-Key"


class TokenMetrics(MemoryMetrics):
    class Options(MemoryMetrics.Options):
        model_config = ConfigDict(extra="forbid")
        bearer_token_secret: str = ""
        url: str = "http://127.0.0.1:9090"


def register_token_adapters() -> None:
    registry.register(registry.BACKENDS_GROUP, "token-memory", f"{__name__}:TokenBackend")
    registry.register(registry.METRICS_GROUP, "token-memory", f"{__name__}:TokenMetrics")


def token_plan(secrets: str, backend_options: str = "", metrics_options: str = "") -> str:
    """A plan on the token adapters; ``secrets`` is the body of its [secrets] table."""
    return f"""
[service]
name = "s{uuid.uuid4().hex[:8]}"

[secrets]
{secrets}

[[environments]]
name = "production"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "token-memory"
    [environments.backend.options]
    {backend_options}
  [environments.metrics]
  source = "token-memory"
    [environments.metrics.options]
    {metrics_options}

[strategy.canary]
steps = [{{ set_weight = 20 }}, {{ pause = {{}} }}]
"""


def cockpit(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``python -m cockpit ARGS`` in a subprocess (stdin and stdout are pipes)."""
    environ = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=environ,
    )


class PtyRun:
    """``python -m cockpit ARGS`` on a pseudo-terminal (stdin, stdout and stderr all the
    terminal, as a person at a shell has them). ``expect`` waits for text, ``send`` types."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        import pty

        environ = {**os.environ, **(env or {}), "TERM": "dumb", "COLUMNS": "200"}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the cockpit, the pty its controlling terminal
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "cockpit", *args], environ)
        self.output = b""
        self.seen = 0  # where the next expect starts looking: text already matched is not matched again

    def _read(self, deadline: float) -> bool:
        import select
        import time

        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.output += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = 30.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while (found := self.output.find(text.encode(), self.seen)) < 0:
            if not self._read(deadline):
                raise AssertionError(f"{text!r} never came; the terminal showed {self.text()!r}")
        self.seen = found + len(text.encode())

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def finish(self, timeout: float = 30.0) -> int:
        """Read to the end; the exit code. A child still running at the deadline is killed
        (and the test fails) rather than waited for forever."""
        import signal
        import time

        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        # The terminal closes a moment before the process is gone: poll until the deadline.
        while (reaped := os.waitpid(self.pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        pid, status = reaped
        if pid == 0:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            os.close(self.fd)
            raise AssertionError(f"still running after {timeout}s; the terminal showed {self.text()!r}")
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)

    def text(self) -> str:
        return self.output.decode(errors="replace")
