"""The router's lifecycle: start it, watch it, restart it, and speak to it.

The cockpit binds the router's two listening sockets (traffic and control) itself and
*keeps its own copies open* for as long as the environment runs. So while a router process
is dead, new connections wait in the kernel's accept backlog instead of being refused, the
port can never be taken by someone else, and the restarted router (given the same fds)
serves the connections that waited. The handle remembers the last routing table the router
confirmed and starts the new process with it, so the first request it serves already
follows the table the cockpit set - not an empty one.

A router that dies again and again is not restarted forever: after ``crash_loop_deaths``
deaths within ``crash_loop_window`` seconds the handle gives up, reports a crash loop in
:attr:`RouterHandle.problem`, and every control call raises :class:`BackendUnavailable`
with that message, so an action fails loudly instead of acting on a router that is not there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp

from cockpit.adapters.base import BackendUnavailable
from cockpit.adapters.router.control import STATE_TIMEOUT, RouterControl
from cockpit.adapters.router.protocol import TOKEN_ENV, DrainResult, RouterTable
from cockpit.adapters.supervise import procs
from cockpit.adapters.supervise.logs import LogTarget

T = TypeVar("T")

RESTART_BACKOFF = (0.0, 0.25, 0.5, 1.0, 2.0)  # seconds before restart N (the last one repeats)
CRASH_LOOP_DEATHS = 5
CRASH_LOOP_WINDOW = 60.0
START_TIMEOUT = 10.0  # a router that does not answer its control API by then failed to start
RESTART_WAIT = 5.0  # how long a control call waits for a restart under way
STOP_GRACE = 5.0
FLUSH_TIMEOUT = 1.0  # how long to wait for a dead router's last log lines


class RouterHandle:
    """One environment's router process, supervised. Its control methods have the same
    signatures as :class:`RouterControl`, so the backend drives either the same way."""

    def __init__(
        self,
        *,
        env: str,
        marker: str,
        token: str,
        session: aiohttp.ClientSession,
        logs: LogTarget,
        on_restart: Callable[[], None] | None = None,
        backoff: Sequence[float] = RESTART_BACKOFF,
        crash_loop_deaths: int = CRASH_LOOP_DEATHS,
        crash_loop_window: float = CRASH_LOOP_WINDOW,
    ) -> None:
        self.env = env
        self.table = RouterTable()  # the last table the router confirmed
        self.restarts = 0
        self.crash_loop = False
        self.problem = ""  # one line on what is wrong with the router now, "" if fine
        self._marker = marker
        self._token = token
        self._session = session
        self._logs = logs
        self._on_restart = on_restart
        self._backoff = tuple(backoff) or (0.0,)
        self._crash_loop_deaths = crash_loop_deaths
        self._crash_loop_window = crash_loop_window
        self._listen: socket.socket | None = None
        self._control_sock: socket.socket | None = None
        self._client: RouterControl | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._pumps: list[asyncio.Future[None]] = []
        self._last_stderr = ""
        self._deaths: deque[float] = deque()
        self._ready = asyncio.Event()  # set while a router is up (or when waiting is pointless)
        self._supervisor: asyncio.Task[None] | None = None
        self._stopped = False

    # ------------------------------------------------------------------ facts

    @property
    def router_url(self) -> str:
        assert self._listen is not None
        return f"http://127.0.0.1:{self._listen.getsockname()[1]}"

    @property
    def url(self) -> str:
        """The control API's URL (as :attr:`RouterControl.url`)."""
        assert self._client is not None
        return self._client.url

    @property
    def pid(self) -> int:
        return self._process.pid if self._process is not None else 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, listen: socket.socket, control: socket.socket) -> None:
        """Start the router on these listening sockets; the handle owns them from now on
        (closed by :meth:`stop`, also when the start fails)."""
        self._listen, self._control_sock = listen, control
        self._client = RouterControl(
            self._session, f"http://127.0.0.1:{control.getsockname()[1]}", self._token, self.env
        )
        await self._spawn_and_wait()
        self._ready.set()
        self._supervisor = asyncio.ensure_future(self._supervise())

    async def stop(self, grace: float = STOP_GRACE) -> int:
        """Stop the router for good and release its port."""
        self._stopped = True
        self._ready.set()  # wake waiting calls: they fail at once
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        code = -1
        if self._process is not None:
            code = await procs.terminate(self._process, grace)
            await self._flush()
        for task in self._pumps:
            task.cancel()
        for sock in (self._listen, self._control_sock):
            if sock is not None:
                sock.close()
        return code

    # ------------------------------------------------------------------ control API

    async def state(self, timeout: float = STATE_TIMEOUT) -> dict[str, Any]:
        return await self._call(lambda c: c.state(timeout))

    async def put(self, table: RouterTable) -> dict[str, Any]:
        state = await self._call(lambda c: c.put(table))
        # Remembered only once the router confirmed it: a restart restores what really
        # routed, never a table whose push failed (the caller treats that as not done).
        self.table = table
        return state

    async def put_table(self, stable: list[str], canary: list[str], weight: int) -> dict[str, Any]:
        return await self.put(RouterTable(tuple(stable), tuple(canary), weight))

    async def drain(self, urls: list[str], timeout: float) -> DrainResult:
        return await self._call(lambda c: c.drain(urls, timeout))

    async def _call(self, op: Callable[[RouterControl], Awaitable[T]]) -> T:
        """Run one control call; if the router died under it, wait for the restart and
        run it once more (every call here is idempotent: the table is replaced whole)."""
        for attempt in (1, 2):
            await self._wait_ready()
            assert self._client is not None
            pid = self.pid
            try:
                return await op(self._client)
            except BackendUnavailable as exc:
                died = not procs.alive(pid) or pid != self.pid
                if attempt == 2 or not died or self._stopped:
                    raise BackendUnavailable(self._explain(str(exc), pid)) from None
        raise AssertionError("unreachable")

    async def _wait_ready(self) -> None:
        if not self._ready.is_set() and not self.crash_loop and not self._stopped:
            try:
                await asyncio.wait_for(self._ready.wait(), RESTART_WAIT)
            except TimeoutError:
                raise BackendUnavailable(
                    f"the router of environment {self.env} is restarting ({self.problem}) "
                    f"and was not back within {RESTART_WAIT:g}s"
                ) from None
        if self.crash_loop:
            raise BackendUnavailable(self.problem)
        if self._stopped:
            raise BackendUnavailable(f"the router of environment {self.env} is stopped")

    def _explain(self, message: str, pid: int) -> str:
        state = procs.proc_state(pid)
        if state == "T":
            return f"{message}; its process (pid {pid}) is stopped (SIGSTOP?) and answers nothing until continued"
        if state in (None, "Z", "X"):
            return f"{message}; its process (pid {pid}) is gone"
        return f"{message}; its process (pid {pid}) runs but does not answer"

    # ------------------------------------------------------------------ supervision

    async def _supervise(self) -> None:
        while True:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopped:
                return
            died = time.monotonic()
            self._ready.clear()
            await self._flush()
            how = _describe_exit(code, self._last_stderr)
            if self._note_death(died, how):
                return
            self.problem = f"router died ({how}); restarting"
            await asyncio.sleep(self._backoff[min(len(self._deaths), len(self._backoff)) - 1])
            try:
                await self._spawn_and_wait()
                restored = await self._restore_table()
            except BackendUnavailable as exc:
                self._logs.note(f"router died ({how}); restart failed: {exc}", "error")
                if self.running:  # up but unusable: make it one more death, not a silent hang
                    assert self._process is not None
                    await procs.terminate(self._process, 1.0)
                continue
            self.restarts += 1
            self.problem = ""
            self._ready.set()
            self._logs.note(
                f"router died ({how}); restarted in {time.monotonic() - died:.1f}s as pid {self.pid}, "
                f"{restored}",
                "warning",
            )
            if self._on_restart is not None:
                self._on_restart()

    def _note_death(self, when: float, how: str) -> bool:
        """Count a death; True (and the crash loop reported) when it is one too many."""
        self._deaths.append(when)
        while self._deaths and self._deaths[0] < when - self._crash_loop_window:
            self._deaths.popleft()
        if len(self._deaths) < self._crash_loop_deaths:
            return False
        self.crash_loop = True
        self.problem = (
            f"the router of environment {self.env} died {len(self._deaths)} times within "
            f"{self._crash_loop_window:g}s (last: {how}); crash loop, not restarting it"
        )
        self._ready.set()  # waiting calls fail now with the problem
        self._logs.note(self.problem, "error")
        return True

    async def _restore_table(self) -> str:
        """Check the restarted router routes by the remembered table (it was given it at
        start); push it again if not. Returns the words for the restart's log line."""
        assert self._client is not None
        state = await self._client.state()
        if RouterTable.from_state(state) != self.table:
            state = await self._client.put(self.table)
        if RouterTable.from_state(state) != self.table:
            raise BackendUnavailable(f"the restarted router of {self.env} does not take the table back")
        return f"table restored ({self.table.describe()})"

    async def _spawn_and_wait(self) -> None:
        assert self._listen is not None and self._control_sock is not None and self._client is not None
        fds = (self._listen.fileno(), self._control_sock.fileno())
        argv = [
            procs.python(), "-m", "cockpit.adapters.router",
            "--listen-fd", str(fds[0]), "--control-fd", str(fds[1]),
        ]  # fmt: skip
        if self.table != RouterTable():
            argv += ["--table", json.dumps(self.table.to_json())]
        env = procs.child_env(self._marker, {TOKEN_ENV: self._token})
        try:
            # The router forks nothing, and its pid must be the router's own (see procs.spawn).
            process = await procs.spawn(argv, env=env, pass_fds=fds, shim=False)
        except OSError as exc:
            raise BackendUnavailable(f"cannot start the router of {self.env}: {exc}") from None
        for task in self._pumps:
            task.cancel()
        self._process, self._last_stderr = process, ""
        assert process.stdout is not None and process.stderr is not None
        self._pumps = [
            asyncio.ensure_future(procs.pump(process.stdout, self._out)),
            asyncio.ensure_future(procs.pump(process.stderr, self._err)),
        ]
        await self._wait_started(process)

    async def _wait_started(self, process: asyncio.subprocess.Process) -> None:
        """Until the control API answers. A request to it waits in the backlog we hold
        until the router accepts it, so the process's exit is watched alongside."""
        assert self._client is not None
        deadline = time.monotonic() + START_TIMEOUT
        exited = asyncio.ensure_future(process.wait())
        try:
            while True:
                remaining = deadline - time.monotonic()
                probe = asyncio.ensure_future(self._client.state(timeout=max(0.1, min(1.0, remaining))))
                await asyncio.wait((probe, exited), return_when=asyncio.FIRST_COMPLETED)
                if probe.done() and probe.exception() is None:
                    return
                if not probe.done():
                    probe.cancel()
                if exited.done() or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        finally:
            exited.cancel()
        reason = (
            f"it exited ({_describe_exit(process.returncode, '')})"
            if process.returncode is not None
            else f"no answer within {START_TIMEOUT:g}s"
        )
        if process.returncode is None:
            await procs.terminate(process, 1.0)
        await self._flush()
        raise BackendUnavailable(
            f"the router of {self.env} did not start: {reason} "
            f"(last stderr line: {self._last_stderr or '(none)'})"
        )

    # ------------------------------------------------------------------ logs

    def _out(self, lines: list[str]) -> None:
        self._logs.emit("router", None, lines)

    def _err(self, lines: list[str]) -> None:
        for line in reversed(lines):
            if line.strip():
                self._last_stderr = line.strip()
                break
        self._out(lines)

    async def _flush(self) -> None:
        # The last lines of a dying router are often the ones that explain why.
        if self._pumps:
            await asyncio.wait(self._pumps, timeout=FLUSH_TIMEOUT)


def _describe_exit(code: int | None, last_stderr: str) -> str:
    if code is None:
        how = "no exit code"
    elif code < 0:
        try:
            how = f"signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"signal {-code}"
    else:
        how = f"exit code {code}"
    return f"{how}; last stderr line: {last_stderr}" if last_stderr else how
