"""One supervised child: its log pumps, its last stderr line, and its exit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cockpit.adapters.base import Track
from cockpit.adapters.supervise import procs
from cockpit.adapters.supervise.logs import LogTarget
from cockpit.secrets import redact

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
PUMP_FLUSH_TIMEOUT = 2.0  # how long to wait for a stopped child's last log lines


class ManagedProcess:
    """A child started with :func:`procs.spawn <cockpit.adapters.supervise.procs.spawn>`.

    Its output goes to ``logs`` under the name ``source()`` gives (read at each batch: a
    replica's name and track may change when it restarts), secrets masked. An exit that
    :meth:`stop` did not ask for is reported there, takes down what is left of the
    child's process group, and calls ``on_exit`` (a restart policy, for instance)."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        logs: LogTarget,
        source: Callable[[], tuple[str, Track | None]],
        on_exit: Callable[[ManagedProcess], None] | None = None,
    ) -> None:
        self.process = process
        self.pid = process.pid
        self.last_stderr = ""
        self.stopping = False
        self._logs = logs
        self._source = source
        self._on_exit = on_exit
        assert process.stdout is not None and process.stderr is not None
        self._pumps = [
            asyncio.ensure_future(procs.pump(process.stdout, self._out)),
            asyncio.ensure_future(procs.pump(process.stderr, self._err)),
        ]
        self._watch = asyncio.ensure_future(self._watch_exit())

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def _out(self, lines: list[str]) -> None:
        source, track = self._source()
        self._logs.emit(source, track, [redact(line) for line in lines])

    def _err(self, lines: list[str]) -> None:
        for line in reversed(lines):
            if line.strip():
                self.last_stderr = line.strip()
                break
        self._out(lines)

    async def _watch_exit(self) -> None:
        code = await self.process.wait()
        if not self.stopping:
            # If the shim itself was killed, what it ran is still in its group: not for long.
            procs.kill_group(self.pid)
            await self.flush()
            source, track = self._source()
            self._logs.note(
                f"{source} (pid {self.pid}) exited unexpectedly with code {code}"
                f" (last stderr line: {redact(self.last_stderr) or '(none)'})",
                "error",
                track,
            )
            if self._on_exit is not None:
                self._on_exit(self)

    async def flush(self) -> None:
        """Wait (bounded) until the pipes are read to the end: the last lines of a dying
        process are often the ones that explain why."""
        await asyncio.wait(self._pumps, timeout=PUMP_FLUSH_TIMEOUT)

    async def stop(self, grace: float = STOP_GRACE) -> int:
        self.stopping = True
        code = await procs.terminate(self.process, grace)
        await self.flush()
        for task in (*self._pumps, self._watch):
            task.cancel()
        return code
