"""Follow one container's log in a thread and hand its lines to the environment's
:class:`~cockpit.adapters.supervise.logs.LogHub` on the event loop, in batches.

The stream ends whenever the container stops (a crash, a restart by Docker's policy).
Following survives that: the follower waits for the container to run again and asks for
the lines since the last timestamp it saw, skipping the ones it already delivered (Docker
prefixes every line with its own nanosecond timestamp when asked)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from cockpit.adapters.docker.client import Daemon
from cockpit.adapters.supervise.logs import LogTarget
from cockpit.model import Track

BATCH_LINES = 500  # lines handed to the loop at once at most
REFOLLOW_WAIT = 0.2  # between looks at a stopped container


class LogFollower:
    def __init__(
        self,
        daemon: Daemon,
        container_id: str,
        target: LogTarget,
        loop: asyncio.AbstractEventLoop,
        describe: Callable[[], tuple[str, Track | None]],
    ) -> None:
        self._daemon = daemon
        self._id = container_id
        self._target = target
        self._loop = loop
        self._describe = describe  # (source, track) now: a promote changes the track
        self._stopped = threading.Event()
        self._stream: Any = None
        self._last_ts = ""  # RFC 3339 nano timestamp of the last line delivered
        self.follows = 0  # how many times the stream was (re)opened
        self._thread = threading.Thread(target=self._run, name=f"cockpit-docker-logs-{container_id[:12]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):  # a broken stream is being dropped anyway
                stream.close()

    def _run(self) -> None:
        client = None
        try:
            client = self._daemon.new_client(timeout=None)
            while not self._stopped.is_set():
                try:
                    container = client.containers.get(self._id)
                except Exception:
                    return  # removed (or the daemon is gone: the backend reports that)
                state = container.attrs.get("State") or {}
                stopped = not (state.get("Running") or state.get("Restarting"))
                if stopped and self.follows and state.get("Status") in ("exited", "dead"):
                    # Stopped, unless Docker's policy restarts it: look again soon.
                    self._stopped.wait(REFOLLOW_WAIT * 5)
                    continue
                self._follow(container)
                self._stopped.wait(REFOLLOW_WAIT)
        finally:
            if client is not None:
                client.close()

    def _follow(self, container: Any) -> None:
        since = _seconds(self._last_ts) if self._last_ts else None
        self.follows += 1
        pending = b""
        try:
            self._stream = container.logs(stream=True, follow=True, timestamps=True, since=since)
            for chunk in self._stream:
                if self._stopped.is_set():
                    return
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if lines:
                    self._deliver(lines)
            if pending:
                self._deliver([pending])
        except Exception:
            pass
        finally:
            self._stream = None

    def _deliver(self, raw: list[bytes]) -> None:
        texts: list[str] = []
        for line in raw:
            ts, _, text = line.decode(errors="replace").rstrip("\r").partition(" ")
            if self._last_ts and ts <= self._last_ts:
                continue  # delivered before the stream was reopened
            self._last_ts = ts
            texts.append(text)
        for start in range(0, len(texts), BATCH_LINES):
            batch = texts[start : start + BATCH_LINES]
            try:
                self._loop.call_soon_threadsafe(self._emit, batch)
            except RuntimeError:
                self._stopped.set()
                return

    def _emit(self, texts: list[str]) -> None:
        source, track = self._describe()
        self._target.emit(source, track, texts)

    def join(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)


def _seconds(rfc3339: str) -> float | None:
    """Unix seconds of Docker's ``2024-05-01T12:00:00.123456789Z`` (to the microsecond)."""
    from datetime import datetime

    head, _, frac = rfc3339.rstrip("Z").partition(".")
    try:
        base = datetime.fromisoformat(head + "+00:00").timestamp()
    except ValueError:
        return None
    return base + float(f"0.{frac[:6] or 0}")
