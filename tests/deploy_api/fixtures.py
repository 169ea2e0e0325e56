"""Pytest fixtures for the deploy API.

Import ``deploy_api_fixture`` and ``deploy_api_server_fixture`` into a test module (the
functions carry the fixture names ``deploy_api`` and ``deploy_api_server``):

* ``deploy_api_server`` (session): the service in its own process, started once per test
  session on a free port with a fresh random token; yields its base URL and token.
* ``deploy_api`` (function): that server, reset to a clean state for the test, with a
  unique app name and the test-control calls (faults, calls log, broken versions).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy_api.__main__ import TOKEN_ENV

ROOT = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT = 20.0
LISTENING = "deploy-api listening on "


@dataclass(frozen=True)
class DeployApiServer:
    url: str  # http://127.0.0.1:PORT
    token: str
    process: subprocess.Popen[bytes] = field(repr=False)
    log: Path  # the service's stderr, for a failing test's post-mortem


@dataclass
class DeployApi:
    """One test's view of the server: its URL and token, a unique app name, and the
    test-control calls. The control calls are synchronous: the server runs in another
    process, so blocking a test's loop for a local round trip changes nothing it measures."""

    url: str
    token: str
    app: str
    client: httpx.Client = field(repr=False)

    def env_path(self, env: str, app: str | None = None) -> str:
        return f"/api/apps/{app or self.app}/envs/{env}"

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authorised call to the API (``path`` like ``/api/apps/...``)."""
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def status(self, env: str, app: str | None = None) -> dict[str, Any]:
        response = self.api("GET", self.env_path(env, app) + "/status")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def fault(self, **spec: Any) -> int:
        """Inject a fault: ``method``, ``path_suffix``, ``status`` and/or ``delay``, ``times``."""
        response = self.client.post("/_test/faults", json=spec)
        response.raise_for_status()
        fault_id: int = response.json()["fault"]
        return fault_id

    def calls(self, app: str | None = None) -> list[dict[str, Any]]:
        """Every API call this test's app received (method, path, idempotency_key, status...)."""
        response = self.client.get("/_test/calls", params={"app": app or self.app})
        response.raise_for_status()
        calls: list[dict[str, Any]] = response.json()["calls"]
        return calls

    def broken(self, version: str, broken: bool = True) -> None:
        self.client.post("/_test/broken", json={"version": version, "broken": broken}).raise_for_status()

    def configure(self, env: str, **settings: Any) -> dict[str, Any]:
        response = self.client.post("/_test/configure", json={"app": self.app, "env": env, **settings})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def reset(self) -> None:
        self.client.post("/_test/reset").raise_for_status()

    def wait_for(self, predicate: Any, env: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll ``status`` until ``predicate(status)`` holds; the last status otherwise fails."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(env)
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; last status: {status}")
            time.sleep(0.05)


def _read_url(process: subprocess.Popen[bytes], log: Path) -> str:
    """The URL from the service's first stdout line, or a failure that says why not."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not selector.select(left):
            break
        chunk = os.read(process.stdout.fileno(), 1)
        if not chunk:
            break
        line += chunk
    selector.close()
    text = line.decode(errors="replace").strip()
    if not text.startswith(LISTENING):
        process.kill()
        process.wait()
        raise RuntimeError(f"the deploy API did not start: {text!r}; stderr: {log.read_text()[-2000:]}")
    return text.removeprefix(LISTENING)


def _start(tmp_path_factory: pytest.TempPathFactory) -> DeployApiServer:
    token = "dk-" + secrets.token_urlsafe(24)  # a fresh, recognisable token per session
    log = tmp_path_factory.mktemp("deploy-api") / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.deploy_api", "--port", "0"],
            cwd=ROOT,
            env={**os.environ, TOKEN_ENV: token},
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    return DeployApiServer(_read_url(process, log), token, process, log)


def _stop(server: DeployApiServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    if server.process.stdout is not None:
        server.process.stdout.close()


# Each test module that imports the fixture gets its own copy of it in pytest's eyes (a
# session-scoped fixture is cached per definition), so the process is shared here: started
# by the first user, stopped when the last one is torn down at the end of the session.
_shared: DeployApiServer | None = None
_users = 0


@pytest.fixture(name="deploy_api_server", scope="session")
def deploy_api_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployApiServer]:
    global _shared, _users
    if _shared is None:
        _shared = _start(tmp_path_factory)
    _users += 1
    try:
        yield _shared
    finally:
        _users -= 1
        if _users == 0:
            _stop(_shared)
            _shared = None


@pytest.fixture(name="deploy_api")
def deploy_api_fixture(deploy_api_server: DeployApiServer) -> Iterator[DeployApi]:
    if deploy_api_server.process.poll() is not None:
        pytest.fail(
            f"the deploy API exited ({deploy_api_server.process.returncode}); see {deploy_api_server.log}"
        )
    with httpx.Client(base_url=deploy_api_server.url, timeout=10.0) as client:
        api = DeployApi(deploy_api_server.url, deploy_api_server.token, f"app-{uuid.uuid4().hex[:8]}", client)
        api.reset()
        yield api
        with contextlib.suppress(httpx.HTTPError):
            api.reset()  # stop this test's rollouts and faults before the next test
