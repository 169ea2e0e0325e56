"""Helpers shared by the local backend, router, scrape and demo tests.

Every test gets a unique service name; every process the tests start carries the local
backend's marker env var with that name, so the ``service`` fixture can prove that the
test left no process behind (read from /proc: zombies count as gone, ``kill -0`` would
not tell them apart)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import aiohttp
import pytest

from cockpit.adapters.base import AdapterContext
from cockpit.adapters.local import LocalBackend
from cockpit.adapters.router.protocol import TOKEN_HEADER
from cockpit.adapters.supervise import procs

VERSIONS = ["1.0.0", "1.1.0", "1.2.0"]
ROOT = Path(__file__).resolve().parent.parent


def live_marked(prefix: str) -> list[int]:
    """Live (non-zombie) processes whose cockpit marker starts with ``prefix``."""
    needle = f"{procs.MARKER_ENV}={prefix}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(v.startswith(needle) for v in environ.split(b"\0")) and procs.alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if procs.alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture(name="service")
def service_fixture() -> Iterator[str]:
    """A unique service name; after the test, no process of it may be alive."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    left = wait_gone(live_marked(name + "/"), timeout=3.0)
    if left:
        for pid in left:  # clean up so one failure does not cascade into the next tests
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        pytest.fail(f"processes left behind by the test: {left}")


def make_backend(run_dir: Path, service: str, env: str = "staging", **options: object) -> LocalBackend:
    options.setdefault("versions", VERSIONS)
    ctx = AdapterContext(service=service, env=env, run_dir=run_dir)
    return LocalBackend(ctx, LocalBackend.Options(**options))


# --------------------------------------------------------------------------- raw processes


def marker_env(service: str) -> dict[str, str]:
    return procs.child_env(f"{service}/raw/{uuid.uuid4().hex[:6]}")


def demo_command(version: str, port: int, env: str = "test") -> list[str]:
    """The command line of one demo service replica."""
    return [
        sys.executable,
        "-m",
        "cockpit.demo.service",
        "--version",
        version,
        "--port",
        str(port),
        "--env",
        env,
    ]


# The demo replicas started by start_demo, by port, with a file holding their stderr: a
# replica that never answers is then reported with its exit code and its own words.
_demos: dict[int, tuple[subprocess.Popen[bytes], tempfile._TemporaryFileWrapper[bytes]]] = {}


def start_demo(service: str, version: str, port: int, env: str = "test") -> subprocess.Popen[bytes]:
    stderr = tempfile.NamedTemporaryFile(prefix="demo-stderr-", delete=True)  # noqa: SIM115
    process = subprocess.Popen(
        demo_command(version, port, env),
        env=marker_env(service),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
    _demos[port] = (process, stderr)
    return process


def demo_report(port: int) -> str:
    """What the demo started on ``port`` by :func:`start_demo` says of itself."""
    if port not in _demos:
        return "no demo was started on that port by start_demo"
    process, stderr = _demos[port]
    state = "still running" if process.poll() is None else f"exited with {process.returncode}"
    stderr.seek(0)
    said = stderr.read()[-2000:].decode(errors="replace").strip() or "(nothing on stderr)"
    return f"demo pid {process.pid} {state}; its stderr: {said}"


def stop(*popens: subprocess.Popen[bytes]) -> None:
    for p in popens:
        if p.poll() is None:
            p.terminate()
    for p in popens:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()
        for port, (process, stderr) in list(_demos.items()):
            if process is p:
                stderr.close()
                del _demos[port]


class Router:
    """The router process started directly (without the backend), for router tests."""

    def __init__(self, service: str, token: str = "test-token") -> None:
        self.token = token
        listen = procs.bind_listener(0, "test")
        control = procs.bind_listener(0, "test")
        self.url = f"http://127.0.0.1:{listen.getsockname()[1]}"
        self.control_url = f"http://127.0.0.1:{control.getsockname()[1]}"
        env = marker_env(service)
        env["COCKPIT_ROUTER_TOKEN"] = token
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "cockpit.adapters.router"),
                *("--listen-fd", str(listen.fileno()), "--control-fd", str(control.fileno())),
            ],
            env=env,
            pass_fds=(listen.fileno(), control.fileno()),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        listen.close()
        control.close()

    async def control(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.control_url + path, json=body, headers={TOKEN_HEADER: self.token}) as r,
        ):
            return r.status, await r.json()

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.control("GET", "/state")
                return
            except aiohttp.ClientError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                await asyncio.sleep(0.05)

    async def table(self, stable: list[str], canary: list[str] = (), weight: int = 0) -> dict:  # type: ignore[assignment]
        status, state = await self.control(
            "PUT", "/table", {"stable": stable, "canary": list(canary), "weight": weight}
        )
        assert status == 200, state
        return state


async def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait for a 200 from ``url``; a demo started there that exits first fails at once,
    with its exit code and stderr (a port taken in between, a crash at import...)."""
    deadline = time.monotonic() + timeout
    port = urllib.parse.urlsplit(url).port
    demo = _demos.get(port) if port is not None else None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
        while True:
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if demo is not None and demo[0].poll() is not None:
                raise RuntimeError(f"{url} will never answer: {demo_report(port)}")  # type: ignore[arg-type]
            if time.monotonic() > deadline:
                extra = f"; {demo_report(port)}" if demo is not None else ""  # type: ignore[arg-type]
                raise TimeoutError(f"{url} did not answer 200 within {timeout}s{extra}")
            await asyncio.sleep(0.05)


async def hit(url: str, n: int, concurrency: int = 16) -> collections.Counter[str]:
    """Send ``n`` GETs; count answers by ``version`` (from the JSON body) or by failure."""
    counts: collections.Counter[str] = collections.Counter()
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as s:

        async def one() -> None:
            async with sem:
                try:
                    async with s.get(url) as r:
                        body = await r.read()
                        if r.status != 200:
                            counts[f"http {r.status}"] += 1
                        else:
                            counts[json.loads(body).get("version", "?")] += 1
                except aiohttp.ClientError as exc:
                    counts[f"error {type(exc).__name__}"] += 1

        await asyncio.gather(*(one() for _ in range(n)))
    return +counts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
