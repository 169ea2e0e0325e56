"""The platform's log lines into the cockpit's LogSink: polled (with a cursor kept across
polls and failures), or followed as NDJSON or server-sent events (reconnecting with
backoff; an SSE stream resumes from the last event id it saw).

A failure to read logs never touches the rollout: it is logged once per outage (redacted)
and the follower tries again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

from cockpit.adapters.base import BackendError, LogLine, LogSink, Track
from cockpit.adapters.http import mapping
from cockpit.adapters.http.options import LogsOptions, Request
from cockpit.adapters.http.transport import Transport, fill, trimmed
from cockpit.secrets import redact

log = logging.getLogger(__name__)

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
MAX_LINE = 4000  # characters of one log line kept
TRACKS = {t.value: t for t in Track}


def log_line(item: Any, o: LogsOptions, env: str) -> LogLine | None:
    """One platform log object as a LogLine (``None`` if it has no message)."""
    if not isinstance(item, Mapping):
        return None
    message = mapping.find(item, o.message)
    if message is None:
        return None
    ts = mapping.find(item, o.ts)
    track_name = mapping.find(item, o.track)
    track = TRACKS.get(track_name) if isinstance(track_name, str) else None
    parts = [str(p) for p in (track_name, mapping.find(item, o.version), mapping.find(item, o.replica)) if p is not None]
    return LogLine(
        ts=float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else time.time(),
        env=env,
        source=" ".join(parts) or "platform",
        track=track,
        text=redact(" ".join(str(message).splitlines())[:MAX_LINE]),
    )


class LogFollower:
    def __init__(
        self, transport: Transport, options: LogsOptions, values: Mapping[str, object], env: str, sink: LogSink
    ) -> None:
        self.transport, self.options, self.env, self.sink = transport, options, env, sink
        self.path = fill(options.path, values)
        self.values = dict(values)
        self.request = Request(method="GET", path=options.path)
        self.cursor: Any = None  # poll: the platform's "next"; sse: the last event id
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"http-logs-{self.env}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        follow = {"poll": self._poll, "ndjson": self._ndjson, "sse": self._sse}[self.options.mode]
        while True:
            try:
                await follow()
            except asyncio.CancelledError:
                raise
            except (BackendError, httpx.HTTPError, ValueError) as err:
                self.failures += 1
                if self.failures == 1:
                    log.warning("%s logs (%s %s): %s; trying again with backoff", self.env, self.options.mode,
                                self.path, trimmed(str(err)) or type(err).__name__)
            delay = min(FIRST_BACKOFF * 2 ** max(self.failures - 1, 0), MAX_BACKOFF) if self.failures else 0.0
            await asyncio.sleep(delay if self.failures else self.options.interval)

    def _emit(self, items: list[Any]) -> None:
        lines = [line for line in (log_line(i, self.options, self.env) for i in items) if line is not None]
        if lines:
            self.sink(lines)

    def _recovered(self) -> None:
        if self.failures:
            log.info("%s logs: reading again after %d failed attempts", self.env, self.failures)
        self.failures = 0

    async def _poll(self) -> None:
        """One poll: the lines after the cursor; the cursor moves only when they are handed on."""
        params = {self.options.cursor_param: str(self.cursor)} if self.cursor is not None else None
        answer = await self.transport.call("logs", self.request, self.values, params=params)
        self._emit(mapping.find_all(answer.data, self.options.lines))
        cursor = mapping.find(answer.data, self.options.next)
        if cursor is not None:
            self.cursor = cursor
        self._recovered()

    async def _open(self, accept: str) -> contextlib.AbstractAsyncContextManager[httpx.Response]:
        headers = self.transport.headers(None, self.values)
        headers["Accept"] = accept
        params = None
        if self.options.mode == "sse" and self.cursor is not None:
            headers["Last-Event-ID"] = str(self.cursor)
        elif self.cursor is not None:
            params = {self.options.cursor_param: str(self.cursor)}
        # No read timeout: a quiet stream is not a broken one.
        timeout = httpx.Timeout(self.transport.options.timeout, read=None)
        return self.transport.client.stream("GET", self.path, headers=headers, params=params, timeout=timeout)

    async def _check(self, response: httpx.Response) -> None:
        if not 200 <= response.status_code < 300:
            body = (await response.aread()).decode("utf-8", "replace")
            raise BackendError(f"GET {self.path} answered {response.status_code}: {trimmed(body)}")
        self._recovered()

    async def _ndjson(self) -> None:
        async with await self._open("application/x-ndjson") as response:
            await self._check(response)
            async for raw in response.aiter_lines():
                if raw.strip():
                    item = json.loads(raw)
                    self._emit([item])
                    seq = mapping.find(item, self.options.seq) if isinstance(item, Mapping) else None
                    if isinstance(seq, int) and not isinstance(seq, bool):
                        self.cursor = seq + 1  # a reconnect asks for the lines after this one
        raise BackendError("the log stream ended")  # reconnect (after a short backoff)

    async def _sse(self) -> None:
        async with await self._open("text/event-stream") as response:
            await self._check(response)
            data: list[str] = []
            async for raw in response.aiter_lines():
                if raw == "":
                    if data:
                        self._emit([json.loads("\n".join(data))])
                    data = []
                elif raw.startswith("data:"):
                    data.append(raw[5:].removeprefix(" "))
                elif raw.startswith("id:"):
                    self.cursor = raw[3:].strip() or self.cursor
        raise BackendError("the event stream ended")
